/*
 * Randomized crash recovery. Each round a child process opens the log,
 * appends and flushes at random and dies without closing (or, sometimes,
 * closes cleanly); the parent then tears the active segment's tail and
 * index files at random, as a power cut could, and reopens. The recovered
 * log must hold exactly the batches that survived on disk, in order, with
 * the right offsets, and answer timestamp lookups as a brute-force search
 * over them does. Deterministic: a fixed seed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/log.h"
#include "test_util.h"

#define ROUNDS 60
#define BATCHES_MAX (ROUNDS * 40)

struct model_batch {
	int32_t n;
	int64_t ts[6];
	bool compressed;
	int64_t base; /* offset, once it survived */
};

struct crash_test {
	char *dir;
	struct log_config cfg;
	struct model_batch m[BATCHES_MAX];
	int n_made, n_kept; /* batches generated / surviving (a prefix) */
	uint64_t rng;
};

static uint64_t rnd(struct crash_test *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

/* Mostly rising timestamps, with jitter and the odd batch from the past. */
static void model_new(struct crash_test *t, struct model_batch *b, int k)
{
	b->n = 1 + (int32_t)(rnd(t) % 6);
	int64_t base = rnd(t) % 10 == 0 ? 500 : 1000 + k * 3 + (int64_t)(rnd(t) % 50) - 25;
	for (int i = 0; i < b->n; i++)
		b->ts[i] = base + (int64_t)(rnd(t) % 20);
	b->compressed = rnd(t) % 7 == 0;
}

static struct tu_batch_spec model_spec(const struct model_batch *b, int k, int64_t *deltas)
{
	struct tu_batch_spec spec = tu_spec(b->n, b->ts[0], 5 + k % 40);
	for (int i = 0; i < b->n; i++)
		deltas[i] = b->ts[i] - b->ts[0];
	spec.ts_deltas = deltas;
	spec.attributes = b->compressed ? 1 : 0;
	spec.fill = (uint8_t)k;
	return spec;
}

/* The child: append batches [from, to), flush now and then, then die. */
static void child_run(struct crash_test *t, int from, int to, bool clean)
{
	struct io_uring ring;
	int err;
	if (io_uring_queue_init(64, &ring, 0) != 0)
		_exit(2);
	struct plog *l = plog_open(t->dir, &t->cfg, &err);
	if (l == NULL)
		_exit(3);
	for (int k = from; k < to; k++) {
		int64_t d[6];
		struct tu_batch_spec spec = model_spec(&t->m[k], k, d);
		struct plog_append_result res;
		if (tu_append_spec(l, &spec, &res) != 0)
			_exit(4);
		if (rnd(t) % 3 == 0)
			tu_drive(&ring, l, k);
	}
	if (rnd(t) % 2)
		tu_drive(&ring, l, 1000000);
	if (clean)
		plog_close(l);
	_exit(0); /* no atexit, no close: a crash as far as the log knows */
}

/* The newest segment: the .log file with the largest base offset. */
static int64_t active_base(const char *dir)
{
	int64_t best = -1;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len == 24 && strcmp(de->d_name + 20, ".log") == 0) {
			int64_t b = strtoll(de->d_name, NULL, 10);
			best = b > best ? b : best;
		}
	}
	closedir(d);
	return best;
}

static void tear(struct crash_test *t, int64_t base)
{
	char path[4096];
	tu_seg_path(path, sizeof(path), t->dir, base, ".log");
	int64_t size = tu_file_size(path);
	if (size == 0)
		return;
	assert_int_equal(truncate(path, size - (int64_t)(rnd(t) % (uint64_t)(size < 500 ? size : 500))), 0);
	if (rnd(t) % 2) {
		uint8_t junk[64];
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rnd(t);
		tu_file_append(path, junk, rnd(t) % sizeof(junk));
	}
	static const char *const idx[] = { ".index", ".timeindex" };
	for (int i = 0; i < 2; i++) {
		tu_seg_path(path, sizeof(path), t->dir, base, idx[i]);
		if (rnd(t) % 2)
			assert_int_equal(truncate(path, tu_file_size(path) * (int64_t)(rnd(t) % 100) / 100), 0);
	}
}

/* Offset after the last whole, valid batch of the active segment file. */
static int64_t valid_end(const char *dir, int64_t base)
{
	char path[4096];
	tu_seg_path(path, sizeof(path), dir, base, ".log");
	int64_t size = tu_file_size(path), pos = 0, next = base;
	uint8_t *buf = malloc((size_t)size + 1);
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, (size_t)size), size);
	close(fd);
	struct batch_hdr h;
	int n;
	while ((n = batch_validate(buf + pos, (size_t)(size - pos), &h)) > 0 && h.base_offset == next) {
		next = h.base_offset + h.last_offset_delta + 1;
		pos += n;
	}
	free(buf);
	return next;
}

static void model_keep(struct crash_test *t, int64_t end)
{
	int64_t off = 0;
	t->n_kept = 0;
	for (int k = 0; k < t->n_made && off + t->m[k].n <= end; k++) {
		t->m[k].base = off;
		off += t->m[k].n;
		t->n_kept = k + 1;
	}
	assert_int_equal(off, end);
}

static void check_contents(struct crash_test *t, struct plog *l)
{
	static uint8_t buf[1 << 18];
	int64_t next = 0;
	int k = 0;
	while (next < plog_high_watermark(l)) {
		struct plog_read_result rr;
		int32_t max = 1 + (int32_t)(rnd(t) % 3000);
		assert_int_equal(plog_read(l, next, max, buf, sizeof(buf), &rr), 0);
		assert_true(rr.len > 0);
		for (size_t p = 0; p < rr.len; k++) {
			struct batch_hdr h;
			int n = batch_validate(buf + p, rr.len - p, &h);
			assert_true(n > 0 && k < t->n_kept);
			assert_int_equal(h.base_offset, t->m[k].base);
			uint8_t want[2048];
			int64_t d[6];
			struct tu_batch_spec spec = model_spec(&t->m[k], k, d);
			assert_int_equal(tu_batch(want, sizeof(want), &spec), n);
			assert_memory_equal(want + 21, buf + p + 21, (size_t)n - 21);
			next = h.base_offset + h.last_offset_delta + 1;
			p += (size_t)n;
		}
	}
	assert_int_equal(k, t->n_kept);
}

/* Brute force over the model: first record with ts >= want. */
static int64_t model_lookup(const struct crash_test *t, int64_t want, int64_t *ts)
{
	for (int k = 0; k < t->n_kept; k++) {
		const struct model_batch *b = &t->m[k];
		int64_t max = b->ts[0];
		for (int i = 1; i < b->n; i++)
			max = b->ts[i] > max ? b->ts[i] : max;
		if (max < want)
			continue;
		if (b->compressed) {
			*ts = max;
			return b->base;
		}
		for (int i = 0; i < b->n; i++)
			if (b->ts[i] >= want) {
				*ts = b->ts[i];
				return b->base + i;
			}
	}
	return -1;
}

static void check_timestamps(struct crash_test *t, struct plog *l)
{
	for (int q = 0; q < 20; q++) {
		int64_t want = 400 + (int64_t)(rnd(t) % (uint64_t)(1100 + t->n_made * 3));
		int64_t off, ts, mts = -1;
		int64_t moff = model_lookup(t, want, &mts);
		int rc = plog_offset_for_timestamp(l, want, &off, &ts);
		if (moff < 0) {
			assert_int_equal(rc, -ENOENT);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(off, moff);
		assert_int_equal(ts, mts);
	}
}

/* Brute force again: the largest timestamp, at its first record (the last
 * offset of a compressed batch). */
static void check_max_timestamp(const struct crash_test *t, struct plog *l)
{
	int64_t best = -1, at = -1, off, ts;
	for (int k = 0; k < t->n_kept; k++) {
		const struct model_batch *b = &t->m[k];
		for (int i = 0; i < b->n; i++)
			if (b->ts[i] > best) {
				best = b->ts[i];
				at = b->compressed ? b->base + b->n - 1 : b->base + i;
			}
	}
	if (t->n_kept == 0) {
		assert_int_equal(plog_max_timestamp(l, &off, &ts), -ENOENT);
		return;
	}
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(ts, best);
	assert_int_equal(off, at);
}

static void random_crashes(void **state)
{
	(void)state;
	struct crash_test *t = calloc(1, sizeof(*t));
	t->dir = tu_tmpdir();
	t->rng = 88172645463325252ull;
	t->cfg = tu_config(300 + (int64_t)(rnd(t) % 3000), (int32_t)(rnd(t) % 400), FLUSH_ALWAYS);
	for (int round = 0; round < ROUNDS; round++) {
		t->cfg.flush = (enum flush_mode)(rnd(t) % 3);
		int from = t->n_kept, to = from + 1 + (int)(rnd(t) % 40);
		for (int k = from; k < to; k++)
			model_new(t, &t->m[k], k);
		t->n_made = to;
		bool clean = rnd(t) % 4 == 0;
		pid_t pid = fork();
		if (pid == 0)
			child_run(t, from, to, clean);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		int64_t base = active_base(t->dir);
		if (!clean && rnd(t) % 2)
			tear(t, base);
		model_keep(t, valid_end(t->dir, base));

		struct io_uring ring;
		assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
		int err;
		struct plog *l = plog_open(t->dir, &t->cfg, &err);
		assert_non_null(l);
		assert_int_equal(plog_high_watermark(l), valid_end(t->dir, base));
		check_contents(t, l);
		check_timestamps(t, l);
		check_max_timestamp(t, l);
		plog_close(l);
		io_uring_queue_exit(&ring);
	}
	tu_rm_rf(t->dir);
	free(t->dir);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_crashes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
