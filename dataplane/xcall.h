/*
 * xcall: a call from one shard to another, the only way shards talk.
 *
 * The caller embeds a struct xcall in a message it owns (in a request's
 * arena, or preallocated), fills in what the target needs and sends it. The
 * target shard runs x->run on its own thread; when it is done (at once or
 * later, e.g. once a batch is durable) it calls xcall_reply, and the caller's
 * shard runs x->done on the caller's thread. Data travels through the
 * message by pointer: between send and done the caller does not touch the
 * message, between run and reply the target owns it, and the rings'
 * release/acquire ordering publishes every write made before a hand-over.
 *
 * Transport: one SPSC ring per ordered pair of shards carries calls and
 * replies (so a shard sees another's messages in the order they were sent);
 * when a ring is full, messages wait in a per-target overflow list, in
 * order, and go out on a later turn. A sleeping shard is woken through its
 * eventfd, once per turn of the sender and only if it announced it was
 * going to sleep; a busy shard is never woken, it finds the messages on its
 * next turn. A call to the sending shard itself is queued and run on the
 * same turn, so every flow looks the same whichever shard starts it.
 *
 * Threading: all functions run on the shard passed in.
 */
#ifndef SLUICE_XCALL_H
#define SLUICE_XCALL_H

#include <stdbool.h>
#include <stdint.h>

struct shard;
struct xcall;

typedef void (*xcall_fn)(struct shard *sh, struct xcall *x);

struct xcall {
	xcall_fn run;  /* on the target */
	xcall_fn done; /* back on the caller; NULL: the call is not answered */
	int16_t src, dst;
	bool returning;
	struct xcall *next; /* overflow and self queues */
};

/* Send x to shard dst (may be sh itself). */
void xcall_send(struct shard *sh, int dst, struct xcall *x, xcall_fn run, xcall_fn done);

/* Target side: answer x (x->done then runs on the caller). */
void xcall_reply(struct shard *sh, struct xcall *x);

/* Run every message that arrived; retry overflow. Returns how many ran. */
int xcall_poll(struct shard *sh);

/* End of a turn: wake the shards this turn sent to that are asleep. */
void xcall_ring_doorbells(struct shard *sh);

/* Anything waiting to be received by sh (checked before it sleeps). */
bool xcall_incoming(struct shard *sh);

/* Messages queued for sh's self or waiting in its overflow lists. */
bool xcall_queued(struct shard *sh);

#endif
