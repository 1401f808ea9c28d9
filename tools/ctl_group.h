/*
 * ctl_group: what `sluicectl group` knows of a group, shared by
 * ctl_group.c (the commands, classic groups) and ctl_cgroup.c (consumer
 * groups of the KIP-848 protocol, described with ConsumerGroupDescribe).
 */
#ifndef SLUICE_TOOLS_CTL_GROUP_H
#define SLUICE_TOOLS_CTL_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"

/* A coordinator that is loading or moving is asked again after this long,
 * until the request timeout. */
#define CTL_RETRY_MS 200
/* Partitions one describe or reset handles. */
#define CTL_PARTITIONS_MAX (1 << 20)

#define NAME_CAP 256

struct tp {
	char topic[NAME_CAP];
	int32_t part;
	int32_t leader;
	int64_t committed; /* -1: none */
	int64_t start, end; /* -1: unknown */
	int64_t target;     /* reset: the new offset, -1: left out */
	int16_t err;        /* a Kafka error for this partition */
	int member;         /* index in the group's members, -1 */
};

struct tps {
	struct tp *v;
	int n, cap;
};

struct member {
	char id[NAME_CAP], instance[NAME_CAP], client[NAME_CAP], host[NAME_CAP];
	int n_assigned;
	int32_t epoch;      /* consumer groups: the member epoch */
};

struct group {
	char id[NAME_CAP], state[64], ptype[64], protocol[128];
	int16_t err;
	struct member *m;
	int n_members;
	struct tps tps;     /* assigned or committed partitions */
	/* Consumer groups (KIP-848): the epochs, and each member's target
	 * assignment (tp.member says whose). */
	bool consumer;
	int32_t group_epoch, assignment_epoch;
	struct tps target;
};

void ctl_sleep_ms(int ms);
int64_t ctl_mono_ms(void);
/* Errors after which the coordinator is asked again. */
bool ctl_coordinator_retriable(int16_t err);
/* The entry of s for topic-part (added if new); NULL past
 * CTL_PARTITIONS_MAX or without memory. */
struct tp *ctl_tps_get(struct tps *s, const char *topic, int32_t part);

/* ConsumerGroupDescribe of one group at its coordinator c into g (which
 * is zeroed first): 0 with *found set when it is a consumer group, 0 with
 * *found false when the broker says it is not (or does not speak the API:
 * describe it as a classic group), else CTL_EXIT_FAILED (printed). */
int ctl_cgroup_describe(struct ctl *ctl, struct kc_conn *c, const char *id, struct group *g,
			bool *found);
/* Output of what only consumer groups have. */
void ctl_cgroup_print_members(const struct group *g);
void ctl_cgroup_print_json_head(const struct group *g);
void ctl_cgroup_print_json_member(const struct group *g, int i);

#endif
