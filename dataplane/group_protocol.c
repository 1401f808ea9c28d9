/*
 * group_protocol: protocol selection and subscribed topics. See
 * group_protocol.h.
 */
#include "group_protocol.h"

static bool gproto_has(const struct gproto_list *m, struct kstr name)
{
	for (int i = 0; i < m->n; i++)
		if (kstr_eq(m->protos[i].name, name))
			return true;
	return false;
}

/* Does every member list members[0].protos[c]? */
static bool gproto_is_candidate(const struct gproto_list *members, int n_members, int c)
{
	for (int i = 1; i < n_members; i++)
		if (!gproto_has(&members[i], members[0].protos[c].name))
			return false;
	return true;
}

/* A member's vote: its first protocol that is a candidate, as an index in
 * members[0].protos, or -1. */
static int gproto_vote(const struct gproto_list *members, const struct gproto_list *m,
		       const bool *candidate)
{
	for (int i = 0; i < m->n; i++)
		for (int c = 0; c < members[0].n; c++)
			if (candidate[c] && kstr_eq(m->protos[i].name, members[0].protos[c].name))
				return c;
	return -1;
}

int group_protocol_select(const struct gproto_list *members, int n_members)
{
	if (n_members <= 0)
		return -1;
	/* The coordinator bounds a member's protocols (GROUP_PROTOCOLS_MAX),
	 * so these fit on the stack. */
	enum { LOCAL_MAX = 256 };
	bool candidate[LOCAL_MAX];
	int votes[LOCAL_MAX];
	int n0 = members[0].n < LOCAL_MAX ? members[0].n : LOCAL_MAX;
	bool any = false;
	for (int c = 0; c < n0; c++) {
		candidate[c] = gproto_is_candidate(members, n_members, c);
		votes[c] = 0;
		any |= candidate[c];
	}
	if (!any)
		return -1;
	for (int i = 0; i < n_members; i++) {
		int v = gproto_vote(members, &members[i], candidate);
		if (v >= 0)
			votes[v]++;
	}
	int best = -1;
	for (int c = 0; c < n0; c++)
		if (candidate[c] && (best < 0 || votes[c] > votes[best]))
			best = c;
	return best;
}

int group_subscription_has_topic(struct kbytes metadata, struct kstr topic)
{
	if (metadata.len < 2)
		return -1;
	struct kreader r;
	kr_init(&r, metadata.ptr, (size_t)metadata.len, NULL);
	int16_t version = kr_int16(&r);
	int32_t n = kr_int32(&r);
	if (r.err || version < 0 || n < 0 || (size_t)n > kr_remaining(&r))
		return -1;
	int found = 0;
	for (int32_t i = 0; i < n; i++) {
		struct kstr t = kr_string(&r);
		if (r.err)
			return -1;
		if (kstr_eq(t, topic))
			found = 1;
	}
	return found;
}
