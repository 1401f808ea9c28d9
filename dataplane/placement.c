/* placement: partition -> shard. See placement.h. */
#include "placement.h"

uint64_t placement_topic_key(struct kstr topic)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a offset basis */
	for (int32_t i = 0; i < topic.len; i++)
		h = (h ^ (uint8_t)topic.ptr[i]) * 1099511628211ull;
	/* splitmix64 finaliser: FNV's low bits alone vary too little between
	 * names that differ in their last character. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

int32_t placement_shard(struct kstr topic, int32_t partition, int32_t n_shards)
{
	uint64_t first = placement_topic_key(topic) % (uint64_t)n_shards;
	return (int32_t)((first + (uint64_t)partition) % (uint64_t)n_shards);
}
