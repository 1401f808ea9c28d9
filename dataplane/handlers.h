/*
 * handlers: small helpers shared by the handle_*.c request handlers.
 */
#ifndef SLUICE_HANDLERS_H
#define SLUICE_HANDLERS_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "kafka/kafka_wire.h"
#include "request.h"

/* An array of n elements from the request's arena, zeroed. For n == 0 a
 * valid non-NULL pointer (nothing may be stored through it). NULL when the
 * arena limit is reached. */
static inline void *handler_array(struct request *req, size_t elem_size, int32_t n)
{
	static uint64_t empty;
	if (n <= 0)
		return &empty;
	return karena_alloc(&req->arena, elem_size * (size_t)n);
}

#define HANDLER_ARRAY(req, type, n) ((type *)handler_array((req), sizeof(type), (n)))

/* Copy a string into the arena so it outlives the request frame. */
static inline struct kstr handler_strdup(struct request *req, struct kstr s)
{
	if (s.len <= 0)
		return s;
	char *p = karena_alloc(&req->arena, (size_t)s.len);
	if (p == NULL)
		return (struct kstr){ "", 0 };
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kstr){ p, s.len };
}

/* For a request whose answer waits (long poll, other shards): a reader over
 * an arena copy of the rest of the frame, so what it decodes outlives the
 * frame. 0, or -1 without memory. */
static inline int handler_reader_copy(struct request *req, struct kreader *r, struct kreader *out)
{
	size_t n = kr_remaining(r);
	uint8_t *copy = karena_alloc(&req->arena, n > 0 ? n : 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, r->p, n);
	kr_init(out, copy, n, &req->arena);
	return 0;
}

struct partition;
struct shard;

/* A per-partition step of a request, run on the partition's owner: arg
 * and out are the request's (out is written there, for the answer). */
typedef void (*partition_step_fn)(struct shard *sh, struct partition *p, int64_t arg, void *out);

/* Run fn for p here if this shard owns p, else on its owner (an xcall:
 * req->remote_pending counts it, and req->resume runs when the last part
 * is back). error_code (inside out) gets UNKNOWN_TOPIC_OR_PARTITION if the
 * owner no longer has p, KAFKA_STORAGE_ERROR if there is no memory to
 * send it. Allocate everything the answer needs first: once a part is
 * out, the request must not fail. */
void partition_call(struct request *req, struct partition *p, partition_step_fn fn, int64_t arg,
		    void *out, int16_t *error_code);

/* Wall-clock milliseconds, as Kafka timestamps are. */
static inline int64_t handler_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
