/*
 * group_protocol: the pure parts of the classic group protocol that the
 * coordinator decides: which of the members' protocols (assignors) the
 * group uses, and which topics a consumer group is subscribed to.
 *
 * Protocol selection is Kafka's (GroupMetadata.selectProtocol): the
 * candidates are the protocols every member supports; each member votes
 * for the first candidate in its own list (its preference order); the
 * candidate with the most votes wins. Kafka breaks a tie by hash-map
 * order; here the tie goes to the candidate the first member prefers, so
 * the choice is the same on every run.
 *
 * Subscriptions are read from a "consumer" member's metadata with the
 * version-0 layout of ConsumerProtocolSubscription (int16 version, then
 * the topic names), which every later version starts with, as Kafka reads
 * them.
 *
 * Pure functions: any thread, no allocation.
 */
#ifndef SLUICE_GROUP_PROTOCOL_H
#define SLUICE_GROUP_PROTOCOL_H

#include <stdbool.h>

#include "kafka/kafka_wire.h"

/* A protocol a member supports: its name and its metadata (for a
 * consumer, the subscription). */
struct gproto {
	struct kstr name;
	struct kbytes metadata;
};

/* One member's protocols, most preferred first. */
struct gproto_list {
	const struct gproto *protos;
	int n;
};

/* The protocol the group uses, as an index into members[0].protos, or -1
 * when no protocol is supported by every member (or n_members is 0). */
int group_protocol_select(const struct gproto_list *members, int n_members);

/* Is topic among the topics of a ConsumerProtocolSubscription? 1 yes,
 * 0 no, -1 when the bytes are not a subscription. */
int group_subscription_has_topic(struct kbytes metadata, struct kstr topic);

#endif
