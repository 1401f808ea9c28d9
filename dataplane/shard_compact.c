/*
 * shard_compact: see shard_compact.h.
 */
#include "shard_compact.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "say.h"
#include "shard.h"
#include "storage/compact.h"

struct shard_compact {
	struct cleaner *c;       /* NULL until a log is first due */
	int64_t charged;         /* bytes of it charged to the memory budget */
	bool active;             /* a round runs on (topic, part) */
	struct kuuid topic;
	int32_t part;
	int64_t next_scan_ms;    /* sh->now_ms of the next look for a due log */
	int64_t tokens;          /* bytes the rate limit allows now */
	int64_t tokens_us;       /* sh->now_us of the last refill */
	bool failed;             /* the map could not be had: say it once */
	bool waiting;            /* the round waits for its fsyncs' completions */
	uint64_t steps, io_bytes, rounds, throttled;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int shard_compact_init(struct shard *sh)
{
	sh->compact = calloc(1, sizeof(*sh->compact));
	return sh->compact == NULL ? -ENOMEM : 0;
}

void shard_compact_destroy(struct shard *sh)
{
	struct shard_compact *sc = sh->compact;
	if (sc == NULL)
		return;
	cleaner_free(sc->c);
	free(sc);
	sh->compact = NULL;
}

/* The owned partition of a compacted topic that is due with the highest
 * dirty ratio, or NULL. */
static struct partition *compact_pick(struct shard *sh)
{
	struct partition *best = NULL;
	double best_ratio = -1;
	int64_t now = wall_ms();
	for (struct topic_state *ts = sh->topics_head; ts != NULL; ts = ts->list_next) {
		if (!ts->meta->cleanup_compact || ts->n_owned == 0)
			continue;
		for (int32_t i = 0; i < ts->n_parts; i++) {
			struct partition *p = &ts->parts[i];
			struct plog_cleanable pc;
			if (p->log != NULL && plog_compact_plan(p->log, now, &pc) &&
			    pc.dirty_ratio > best_ratio) {
				best = p;
				best_ratio = pc.dirty_ratio;
			}
		}
	}
	return best;
}

static bool compact_cleaner_ready(struct shard *sh, struct shard_compact *sc)
{
	if (sc->c != NULL)
		return true;
	struct cleaner_config cc = {
		.dedupe_buffer_bytes = sh->cfg->log_cleaner_dedupe_buffer_size,
		.slice_bytes = sh->cfg->log_cleaner_slice_bytes,
		.decompress_bytes_max = sh->cfg->log_cleaner_decompress_max_bytes,
	};
	int err;
	sc->c = cleaner_new(&cc, &err);
	if (sc->c == NULL && !sc->failed) {
		say_error("log cleaner: no memory for its %lld-byte offset map (%s): compacted "
			  "topics are not cleaned; lower log.cleaner.dedupe.buffer.size",
			  (long long)cc.dedupe_buffer_bytes, strerror(-err));
		sc->failed = true;
	}
	return sc->c != NULL;
}

/* Keep the budget's count of the cleaner's memory current (its buffers
 * grow with the largest batch it met). */
static void compact_charge(struct shard *sh, struct shard_compact *sc)
{
	int64_t now = sc->c != NULL ? (int64_t)cleaner_memory_bytes(sc->c) : 0;
	shard_mem_charge(&sh->mem, now - sc->charged);
	sc->charged = now;
}

/* Tokens of the I/O rate limit, refilled for the time passed; a burst is
 * at most one slice. False when the cleaner must wait. */
static bool compact_rate_ok(struct shard *sh, struct shard_compact *sc)
{
	int64_t rate = sh->cfg->log_cleaner_io_max_bytes_per_second;
	if (rate <= 0)
		return true;
	int64_t dt = sh->now_us - sc->tokens_us;
	sc->tokens_us = sh->now_us;
	if (dt > 1000000)
		dt = 1000000;
	sc->tokens += (int64_t)((__int128)rate * dt / 1000000);
	if (sc->tokens > sh->cfg->log_cleaner_slice_bytes)
		sc->tokens = sh->cfg->log_cleaner_slice_bytes;
	if (sc->tokens <= 0)
		sc->throttled++;
	return sc->tokens > 0;
}

static void compact_start(struct shard *sh, struct shard_compact *sc)
{
	if (sh->now_ms < sc->next_scan_ms)
		return;
	sc->next_scan_ms = sh->now_ms + sh->cfg->log_cleaner_backoff_ms;
	struct partition *p = compact_pick(sh);
	if (p == NULL || !compact_cleaner_ready(sh, sc))
		return;
	compact_charge(sh, sc);
	sc->active = true;
	sc->topic = p->topic->meta->id;
	sc->part = p->index;
}

void shard_compact_turn(struct shard *sh)
{
	struct shard_compact *sc = sh->compact;
	if (!sh->cfg->log_cleaner_enable || sh->stopping)
		return;
	if (!sc->active)
		compact_start(sh, sc);
	if (!sc->active || !compact_rate_ok(sh, sc))
		return;
	/* Looked up each time: the topic may have been deleted since. */
	struct partition *p = shard_partition_owned(sh, sc->topic, sc->part);
	if (p == NULL || p->log == NULL) {
		sc->active = false;
		return;
	}
	uint64_t io = 0;
	int rc = 1;
	if (!plog_compact_io_pending(p->log)) {
		rc = cleaner_step(sc->c, p->log, wall_ms(), &io);
		sc->steps++;
		sc->io_bytes += io;
		sc->tokens -= (int64_t)io;
	}
	/* Its completion wakes the loop: no need to come back before. */
	sc->waiting = rc == 1 && plog_compact_io_pending(p->log);
	if (rc == 1)
		return;
	sc->active = false;
	if (rc == 0) {
		sc->rounds++;
		sc->next_scan_ms = sh->now_ms; /* the next dirtiest, at once */
	} else {
		say_warn("log cleaner: %s-%d: %s; retrying in log.cleaner.backoff.ms",
			 p->topic->meta->name, p->index, strerror(-rc));
	}
	compact_charge(sh, sc);
}

int64_t shard_compact_deadline_ms(const struct shard *sh)
{
	const struct shard_compact *sc = sh->compact;
	if (!sh->cfg->log_cleaner_enable || sh->stopping)
		return -1;
	if (!sc->active)
		return sc->next_scan_ms;
	if (sc->waiting)
		return -1;
	int64_t rate = sh->cfg->log_cleaner_io_max_bytes_per_second;
	if (rate <= 0 || sc->tokens > 0)
		return sh->now_ms;
	return sh->now_ms + 1 + (-sc->tokens) * 1000 / rate;
}

void shard_compact_stats_print(const struct shard *sh)
{
	const struct shard_compact *sc = sh->compact;
	if (sc == NULL || sc->steps == 0)
		return;
	say_info("shard %d cleaner: rounds=%llu steps=%llu step_us_max=%lld io_bytes=%llu "
		 "throttled=%llu memory=%lld", sh->id, (unsigned long long)sc->rounds,
		 (unsigned long long)sc->steps, (long long)cleaner_step_us_max(sc->c),
		 (unsigned long long)sc->io_bytes, (unsigned long long)sc->throttled,
		 (long long)sc->charged);
}
