/*
 * partition_call: run a per-partition step of a request on the shard that
 * owns the partition (see handlers.h).
 */
#include "handlers.h"
#include "kafka/kafka_errors.h"
#include "shard.h"
#include "xcall.h"

/* One partition sent to its owner; in the request's arena. */
struct xpart {
	struct xcall xc;
	struct request *req;
	struct kuuid topic_id;
	int32_t index;
	int64_t arg;
	void *out;
	int16_t *error_code;
	partition_step_fn fn;
};

static void xpart_run(struct shard *sh, struct xcall *xc)
{
	struct xpart *x = container_of(xc, struct xpart, xc);
	struct partition *p = shard_partition_owned(sh, x->topic_id, x->index);
	if (p == NULL)
		*x->error_code = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
	else
		x->fn(sh, p, x->arg, x->out);
	xcall_reply(sh, xc);
}

static void xpart_done(struct shard *sh, struct xcall *xc)
{
	(void)sh;
	request_remote_done(container_of(xc, struct xpart, xc)->req);
}

void partition_call(struct request *req, struct partition *p, partition_step_fn fn, int64_t arg,
		    void *out, int16_t *error_code)
{
	struct shard *sh = req->sh;
	if (p->owner == sh->id) {
		fn(sh, p, arg, out);
		return;
	}
	struct xpart *x = karena_alloc(&req->arena, sizeof(*x));
	if (x == NULL) {
		*error_code = KAFKA_KAFKA_STORAGE_ERROR;
		return;
	}
	*x = (struct xpart){ .req = req, .topic_id = p->topic->meta->id, .index = p->index,
			     .arg = arg, .out = out, .error_code = error_code, .fn = fn };
	req->remote_pending++;
	xcall_send(sh, p->owner, &x->xc, xpart_run, xpart_done);
}
