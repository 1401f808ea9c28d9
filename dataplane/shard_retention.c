/*
 * shard_retention: the retention pass of one shard. Every
 * log.retention.check.interval.ms (Kafka's knob, 5 minutes by default),
 * or at once after a DeleteRecords moved a start offset here, the shard
 * walks the logs it owns and lets plog_retention_run delete the sealed
 * segments that retention.ms, retention.bytes or the start offset condemn.
 * Unlinking blocks the shard, so one turn deletes at most
 * RETENTION_SEGMENTS_PER_TURN segments and the pass goes on next turn.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "limits.h"
#include "say.h"
#include "shard.h"

/* Wall-clock ms: retention.ms is measured against record timestamps. */
static int64_t retention_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void retention_deleted(void *arg, const struct plog_deleted_segment *d)
{
	const struct partition *p = arg;
	say_info("retention: %s-%d: deleted segment %lld (offsets %lld..%lld, %lld bytes): %s",
		 p->topic->meta->name, p->index, (long long)d->base_offset,
		 (long long)d->base_offset, (long long)d->end_offset - 1, (long long)d->bytes,
		 plog_delete_reason_name(d->reason));
}

/* One partition; *budget shrinks by the segments it deleted. */
static void retention_partition(struct partition *p, int64_t now_ms, int *budget)
{
	int rc = plog_retention_run(p->log, now_ms, *budget, retention_deleted, p);
	if (rc < 0) {
		/* Kept, and tried again next pass: the files may be on a
		 * read-only or failing disk, which the operator must see. */
		say_warn("retention: %s-%d: cannot delete a segment: %s", p->topic->meta->name,
			 p->index, strerror(-rc));
		return;
	}
	*budget -= rc;
}

void shard_retention_tick(struct shard *sh)
{
	if (sh->stopping || sh->now_ms < sh->retention_next_ms)
		return;
	int64_t now_ms = retention_wall_ms();
	int budget = RETENTION_SEGMENTS_PER_TURN;
	for (struct topic_state *ts = sh->topics_head; ts != NULL && budget > 0;
	     ts = ts->list_next)
		for (int32_t i = 0; i < ts->n_parts && budget > 0; i++)
			if (ts->parts[i].log != NULL)
				retention_partition(&ts->parts[i], now_ms, &budget);
	/* Out of budget: more may be due, so look again next turn (the logs
	 * already trimmed cost a comparison each). */
	int64_t interval = sh->cfg->log_retention_check_interval_ms;
	if (budget == 0)
		sh->retention_next_ms = sh->now_ms;
	else if (interval > INT64_MAX - sh->now_ms)
		sh->retention_next_ms = INT64_MAX;
	else
		sh->retention_next_ms = sh->now_ms + interval;
}
