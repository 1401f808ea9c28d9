/*
 * sio_fault: the fault-injecting half of the storage backend. A rule that
 * hits an operation replaces it with a stand-in that takes the same one
 * SQE: a NOP whose completion carries the error, or the real write or
 * read cut to half its length. The stand-in's completion reaches the caller's op with
 * the result the rule chose, so the log above sees exactly what a failing
 * disk would show it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/sio_int.h"
#include "storage/slog.h"

#define SIO_FAULT_PATH_MAX 256

enum sio_fault_effect { FAULT_EIO, FAULT_ENOSPC, FAULT_SHORT, FAULT_TORN, FAULT_EINVAL };

struct sio_fault_rule {
	enum sio_fault_effect effect;
	enum sio_op_kind op;
	enum sio_file_kind file;
	uint64_t after;  /* matching operations let through first */
	int64_t count;   /* hits left; -1: unlimited */
	uint64_t seen;   /* matching operations so far */
	char while_path[SIO_FAULT_PATH_MAX]; /* "" or: only while it exists */
};

/* The stand-in's completion: forwards to the caller's op. */
struct sio_fault_op {
	struct uring_op op;
	struct uring_op *orig;
	int res;       /* the result to report when forced */
	bool forced;   /* report res instead of the stand-in's own */
};

size_t sio_fault_rule_size(void)
{
	return sizeof(struct sio_fault_rule);
}

static int fault_why(char *why, size_t len, const char *msg, const char *at)
{
	snprintf(why, len, "%s: '%s'", msg, at);
	return -1;
}

static int fault_parse_opt(struct sio_fault_rule *r, char *opt, char *why, size_t why_len)
{
	char *eq = strchr(opt, '=');
	if (eq == NULL)
		return fault_why(why, why_len, "expected key=value", opt);
	*eq = '\0';
	const char *v = eq + 1;
	char *end;
	if (strcmp(opt, "file") == 0) {
		if (strcmp(v, "log") == 0)
			r->file = SIO_FILE_LOG;
		else if (strcmp(v, "index") == 0)
			r->file = SIO_FILE_INDEX;
		else if (strcmp(v, "timeindex") == 0)
			r->file = SIO_FILE_TIMEINDEX;
		else if (strcmp(v, "any") == 0)
			r->file = SIO_FILE_ANY;
		else
			return fault_why(why, why_len, "unknown file kind", v);
	} else if (strcmp(opt, "after") == 0 || strcmp(opt, "count") == 0) {
		long long n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || n < 0)
			return fault_why(why, why_len, "expected a count", v);
		if (opt[0] == 'a')
			r->after = (uint64_t)n;
		else
			r->count = n;
	} else if (strcmp(opt, "while") == 0) {
		if (strlen(v) >= sizeof(r->while_path) || v[0] == '\0')
			return fault_why(why, why_len, "bad path", v);
		strcpy(r->while_path, v);
	} else {
		return fault_why(why, why_len, "unknown option", opt);
	}
	return 0;
}

static int fault_parse_rule(struct sio_fault_rule *r, char *text, char *why, size_t why_len)
{
	*r = (struct sio_fault_rule){ .file = SIO_FILE_ANY, .count = -1 };
	char *save, *effect = strtok_r(text, ":", &save), *op = strtok_r(NULL, ":", &save);
	if (effect == NULL || op == NULL)
		return fault_why(why, why_len, "expected EFFECT:OP", text);
	if (strcmp(effect, "eio") == 0)
		r->effect = FAULT_EIO;
	else if (strcmp(effect, "enospc") == 0)
		r->effect = FAULT_ENOSPC;
	else if (strcmp(effect, "short") == 0)
		r->effect = FAULT_SHORT;
	else if (strcmp(effect, "torn") == 0)
		r->effect = FAULT_TORN;
	else if (strcmp(effect, "einval") == 0)
		r->effect = FAULT_EINVAL;
	else
		return fault_why(why, why_len, "unknown effect", effect);
	if (strcmp(op, "write") == 0)
		r->op = SIO_OP_WRITE;
	else if (strcmp(op, "fsync") == 0)
		r->op = SIO_OP_FSYNC;
	else if (strcmp(op, "fallocate") == 0)
		r->op = SIO_OP_FALLOCATE;
	else if (strcmp(op, "open") == 0)
		r->op = SIO_OP_OPEN;
	else if (strcmp(op, "read") == 0)
		r->op = SIO_OP_READ;
	else
		return fault_why(why, why_len, "unknown operation", op);
	if (r->effect == FAULT_SHORT && r->op != SIO_OP_WRITE && r->op != SIO_OP_READ)
		return fault_why(why, why_len, "short applies to writes and reads only", op);
	if (r->effect == FAULT_TORN && r->op != SIO_OP_WRITE)
		return fault_why(why, why_len, "torn applies to writes only", op);
	if (r->op == SIO_OP_READ && r->effect != FAULT_EIO && r->effect != FAULT_SHORT)
		return fault_why(why, why_len, "a read takes eio or short", op);
	if ((r->effect == FAULT_EINVAL) != (r->op == SIO_OP_OPEN) && r->effect != FAULT_EIO)
		return fault_why(why, why_len, "open takes eio or einval, einval only open", op);
	char *opt;
	while ((opt = strtok_r(NULL, ":", &save)) != NULL)
		if (fault_parse_opt(r, opt, why, why_len) != 0)
			return -1;
	return 0;
}

int sio_faults_parse(const char *spec, struct sio_fault_rule *rules, int max, char *why,
		     size_t why_len)
{
	char *copy = strdup(spec);
	if (copy == NULL)
		return fault_why(why, why_len, "out of memory", "");
	int n = 0, rc = 0;
	char *save, *text;
	for (text = strtok_r(copy, ";", &save); text != NULL; text = strtok_r(NULL, ";", &save)) {
		if (n == max) {
			rc = fault_why(why, why_len, "too many rules", spec);
			break;
		}
		struct sio_fault_rule scratch;
		struct sio_fault_rule *r = rules != NULL ? &rules[n] : &scratch;
		/* The rule's own tokenizer must not disturb ours: parse a copy. */
		char one[SIO_FAULT_PATH_MAX * 2];
		if (strlen(text) >= sizeof(one)) {
			rc = fault_why(why, why_len, "rule too long", text);
			break;
		}
		strcpy(one, text);
		rc = fault_parse_rule(r, one, why, why_len);
		if (rc != 0)
			break;
		n++;
	}
	free(copy);
	if (rc == 0 && n == 0)
		rc = fault_why(why, why_len, "no rules", spec);
	return rc != 0 ? -1 : n;
}

/* The first rule that hits this operation, counting it against each rule
 * it matches. */
static struct sio_fault_rule *fault_match(struct sio *io, enum sio_file_kind file,
					  enum sio_op_kind kind)
{
	for (int i = 0; i < io->n_rules; i++) {
		struct sio_fault_rule *r = &io->rules[i];
		if (r->op != kind || (r->file != SIO_FILE_ANY && r->file != file))
			continue;
		if (r->while_path[0] != '\0' && access(r->while_path, F_OK) != 0)
			continue;
		if (r->seen++ < r->after || r->count == 0)
			continue;
		if (r->count > 0)
			r->count--;
		io->stats.faults_injected++;
		return r;
	}
	return NULL;
}

static void fault_op_done(struct uring_op *op, int res, uint32_t cqe_flags)
{
	struct sio_fault_op *fo = container_of(op, struct sio_fault_op, op);
	struct uring_op *orig = fo->orig;
	if (fo->forced)
		res = fo->res;
	free(fo);
	orig->done(orig, res, cqe_flags);
}

static struct sio_fault_op *fault_op_new(struct uring_op *orig, bool forced, int res)
{
	struct sio_fault_op *fo = malloc(sizeof(*fo));
	if (fo != NULL)
		*fo = (struct sio_fault_op){ .op.done = fault_op_done, .orig = orig,
					     .forced = forced, .res = res };
	return fo;
}

/* A NOP whose completion reports err. The NOP itself succeeds, so an SQE
 * linked after it still runs where a real failure would cancel it; the
 * log ignores what a sync after a failed write says either way. */
static bool fault_fail(struct sio *io, int err, unsigned sqe_flags, struct uring_op *orig)
{
	struct sio_fault_op *fo = fault_op_new(orig, true, err);
	if (fo == NULL)
		return false; /* no memory for the fault: do the real thing */
	struct io_uring_sqe *sqe = io_uring_get_sqe(io->ring);
	io_uring_prep_nop(sqe);
	sqe->flags |= (uint8_t)sqe_flags;
	uring_op_prep(sqe, &fo->op);
	return true;
}

bool sio_fault_write(struct sio *io, const struct sio_file *f, const void *buf, size_t len,
		     int64_t pos, unsigned sqe_flags, struct uring_op *op)
{
	struct sio_fault_rule *r = fault_match(io, f->kind, SIO_OP_WRITE);
	if (r == NULL)
		return false;
	if (r->effect == FAULT_EIO || r->effect == FAULT_ENOSPC)
		return fault_fail(io, r->effect == FAULT_EIO ? -EIO : -ENOSPC, sqe_flags, op);
	size_t half = len / 2;
	if (f->direct)
		half -= half % SIO_DIRECT_ALIGN;
	if (half == 0)
		return fault_fail(io, r->effect == FAULT_TORN ? -EIO : -ENOSPC, sqe_flags, op);
	/* Torn: the first half reaches the file and the write still fails,
	 * as when the device dies part way through. Short: it reports the
	 * half it did, as a filling disk does. */
	struct sio_fault_op *fo = fault_op_new(op, r->effect == FAULT_TORN, -EIO);
	if (fo == NULL)
		return false;
	sio_write_real(io, f, buf, half, pos, sqe_flags, &fo->op);
	return true;
}

bool sio_fault_read(struct sio *io, const struct sio_file *f, void *buf, size_t len,
		    int64_t pos, struct uring_op *op)
{
	struct sio_fault_rule *r = fault_match(io, f->kind, SIO_OP_READ);
	if (r == NULL)
		return false;
	if (r->effect == FAULT_EIO || len / 2 == 0)
		return fault_fail(io, -EIO, 0, op);
	/* Short: half the bytes arrive, as at the end of a file that a
	 * concurrent truncation cut; the reader must cope. */
	struct sio_fault_op *fo = fault_op_new(op, false, 0);
	if (fo == NULL)
		return false;
	sio_read_real(io, f, buf, len / 2, pos, &fo->op);
	return true;
}

bool sio_fault_other(struct sio *io, const struct sio_file *f, enum sio_op_kind kind,
		     struct uring_op *op)
{
	struct sio_fault_rule *r = fault_match(io, f->kind, kind);
	if (r == NULL)
		return false;
	return fault_fail(io, r->effect == FAULT_ENOSPC ? -ENOSPC : -EIO, 0, op);
}

int sio_fault_open(struct sio *io, enum sio_file_kind kind, bool direct)
{
	struct sio_fault_rule *r = fault_match(io, kind, SIO_OP_OPEN);
	if (r == NULL)
		return 0;
	if (r->effect == FAULT_EINVAL)
		return direct ? -EINVAL : 0; /* only O_DIRECT can be refused */
	return -EIO;
}
