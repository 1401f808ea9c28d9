/* placement: partition -> shard. See placement.h. */
#include "placement.h"

uint64_t placement_key(struct kstr topic, int32_t partition)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a offset basis */
	for (int32_t i = 0; i < topic.len; i++)
		h = (h ^ (uint8_t)topic.ptr[i]) * 1099511628211ull;
	uint32_t p = (uint32_t)partition;
	for (int shift = 24; shift >= 0; shift -= 8)
		h = (h ^ ((p >> shift) & 0xff)) * 1099511628211ull;
	/* splitmix64 finaliser: FNV's low bits alone vary too little between
	 * neighbouring partitions. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

int32_t placement_jump(uint64_t key, int32_t n_shards)
{
	int64_t b = -1, j = 0;
	while (j < n_shards) {
		b = j;
		key = key * 2862933555777941757ull + 1;
		j = (int64_t)((double)(b + 1) * ((double)(1ll << 31) / (double)((key >> 33) + 1)));
	}
	return (int32_t)b;
}
