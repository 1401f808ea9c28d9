/*
 * metadata_local: the metadata interface (metadata.h) kept in one text file,
 * <data_dir>/__cluster_metadata/metadata, replaced atomically on every
 * change:
 *
 *   cluster.id <22-char base64url id>
 *   producer.id.block.end <first id not yet reserved>
 *   topic <name> <uuid hex> <partitions> [key=value ...]
 *
 * Text, so an operator can read it; rewritten whole, which is fine for the
 * sizes bounded by TOPICS_MAX and the rate of admin operations.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "metadata.h"
#include "say.h"

/* Producer ids are reserved this many at a time; a restart skips the rest
 * of a block, which is harmless (ids are 63-bit). */
#define PRODUCER_ID_BLOCK 1000

struct metadata {
	const struct broker_config *bc;
	char dir[PATH_MAX];
	char cluster_id[32];
	int64_t producer_id_next;
	int64_t producer_id_block_end;
	int n_topics;
	struct topic *topics[TOPICS_MAX];
};

static void random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* the kernel's entropy source cannot fail on Linux >= 3.17 */
		}
		p += r;
		n -= (size_t)r;
	}
}

static void cluster_id_generate(char out[32])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t b[16];
	random_bytes(b, sizeof(b));
	/* 22 base64url characters, as Kafka prints a Uuid. */
	for (int i = 0; i < 22; i++) {
		int bit = i * 6, byte = bit / 8, shift = bit % 8;
		unsigned v = (unsigned)b[byte] << 8 | (byte + 1 < 16 ? b[byte + 1] : 0);
		out[i] = b64[(v >> (10 - shift)) & 63];
	}
	out[22] = '\0';
}

static void uuid_generate(struct kuuid *u)
{
	random_bytes(u->b, sizeof(u->b));
	u->b[6] = (u->b[6] & 0x0f) | 0x40; /* version 4 */
	u->b[8] = (u->b[8] & 0x3f) | 0x80; /* variant */
}

static void uuid_to_hex(const struct kuuid *u, char out[33])
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", u->b[i]);
}

static int uuid_from_hex(const char *s, struct kuuid *u)
{
	if (strlen(s) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		u->b[i] = (uint8_t)v;
	}
	return 0;
}

bool metadata_topic_name_valid(struct kstr name)
{
	if (name.len <= 0 || name.len > TOPIC_NAME_LEN_MAX)
		return false;
	if ((name.len == 1 && name.ptr[0] == '.') ||
	    (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
		return false;
	for (int32_t i = 0; i < name.len; i++) {
		char c = name.ptr[i];
		if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Topic configs Kafka knows, and how their values are checked: numeric
 * ones against [min, max], enumerated ones against values, the rest are
 * stored and shown back. compression.type takes only "producer": batches
 * are stored as produced, and accepting another codec would silently
 * ignore it. */
#define TOPIC_CONFIG_TEXT 1, 0 /* min > max: not numeric */

struct topic_config_rule {
	const char *key;
	int64_t min, max;
	const char *values[5]; /* enumerated values, or none */
	const char *why;       /* message for a value outside them */
};

static const struct topic_config_rule topic_config_rules[] = {
	{ "cleanup.policy", TOPIC_CONFIG_TEXT,
	  { "delete", "compact", "compact,delete", "delete,compact" }, NULL },
	{ "compression.type", TOPIC_CONFIG_TEXT, { "producer" },
	  "is not supported yet: batches are stored as the producer compressed them "
	  "(use 'producer')" },
	{ "delete.retention.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "file.delete.delay.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "flush.messages", 1, INT64_MAX, { NULL }, NULL },
	{ "flush.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "index.interval.bytes", 0, INT32_MAX, { NULL }, NULL },
	{ "local.retention.bytes", -2, INT64_MAX, { NULL }, NULL },
	{ "local.retention.ms", -2, INT64_MAX, { NULL }, NULL },
	{ "max.compaction.lag.ms", 1, INT64_MAX, { NULL }, NULL },
	{ "max.message.bytes", 0, INT32_MAX, { NULL }, NULL },
	{ "message.downconversion.enable", TOPIC_CONFIG_TEXT, { "true", "false" }, NULL },
	{ "message.timestamp.after.max.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "message.timestamp.before.max.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "message.timestamp.difference.max.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "message.timestamp.type", TOPIC_CONFIG_TEXT, { "CreateTime", "LogAppendTime" }, NULL },
	{ "min.cleanable.dirty.ratio", TOPIC_CONFIG_TEXT, { NULL }, NULL },
	{ "min.compaction.lag.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "min.insync.replicas", 1, INT32_MAX, { NULL }, NULL },
	{ "preallocate", TOPIC_CONFIG_TEXT, { "true", "false" }, NULL },
	{ "remote.storage.enable", TOPIC_CONFIG_TEXT, { "false" }, NULL },
	{ "retention.bytes", -1, INT64_MAX, { NULL }, NULL },
	{ "retention.ms", -1, INT64_MAX, { NULL }, NULL },
	{ "segment.bytes", 14, INT32_MAX, { NULL }, NULL },
	{ "segment.index.bytes", 4, INT32_MAX, { NULL }, NULL },
	{ "segment.jitter.ms", 0, INT64_MAX, { NULL }, NULL },
	{ "segment.ms", 1, INT64_MAX, { NULL }, NULL },
	{ "unclean.leader.election.enable", TOPIC_CONFIG_TEXT, { "true", "false" }, NULL },
};

/* The value checks of one rule (numeric range, enumeration, ratio). */
static bool topic_config_value_ok(const struct topic_config_rule *rule, const char *value)
{
	char *end;
	if (rule->min <= rule->max) {
		errno = 0;
		long long v = strtoll(value, &end, 10);
		return errno == 0 && end != value && *end == '\0' && v >= rule->min &&
		       v <= rule->max;
	}
	if (rule->values[0] != NULL) {
		for (int j = 0; j < 5 && rule->values[j] != NULL; j++)
			if (strcmp(rule->values[j], value) == 0)
				return true;
		return false;
	}
	if (strcmp(rule->key, "min.cleanable.dirty.ratio") == 0) {
		double v = strtod(value, &end);
		return end != value && *end == '\0' && v >= 0 && v <= 1;
	}
	return true;
}

int metadata_topic_config_check(const char *key, const char *value, char *why, size_t why_len)
{
	const struct topic_config_rule *rule = NULL;
	for (size_t i = 0; i < sizeof(topic_config_rules) / sizeof(topic_config_rules[0]); i++)
		if (strcmp(topic_config_rules[i].key, key) == 0)
			rule = &topic_config_rules[i];
	if (rule == NULL) {
		snprintf(why, why_len, "Unknown topic config name: %s", key);
		return -1;
	}
	for (const char *p = value; *p; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
			snprintf(why, why_len, "Invalid value for %s: contains white space", key);
			return -1;
		}
	}
	if (strlen(value) > TOPIC_CONFIG_VALUE_LEN_MAX) {
		snprintf(why, why_len, "Invalid value for %s: too long", key);
		return -1;
	}
	if (!topic_config_value_ok(rule, value)) {
		if (rule->why != NULL)
			snprintf(why, why_len, "%s=%s %s", key, value, rule->why);
		else
			snprintf(why, why_len, "Invalid value %s for configuration %s", value, key);
		return -1;
	}
	return 0;
}

static const char *topic_config_get(const struct topic *t, const char *key)
{
	for (int i = 0; i < t->n_configs; i++)
		if (strcmp(t->configs[i].key, key) == 0)
			return t->configs[i].value;
	return NULL;
}

static int64_t topic_config_int(const struct topic *t, const char *key, int64_t def)
{
	const char *v = topic_config_get(t, key);
	return v != NULL ? strtoll(v, NULL, 10) : def;
}

/* Compaction settings, with Kafka's topic defaults. */
static void topic_resolve_compaction(struct topic *t)
{
	const char *policy = topic_config_get(t, "cleanup.policy");
	t->cleanup_compact = policy != NULL && strstr(policy, "compact") != NULL;
	const char *ratio = topic_config_get(t, "min.cleanable.dirty.ratio");
	t->min_cleanable_dirty_ratio = ratio != NULL ? strtod(ratio, NULL) : 0.5;
	t->delete_retention_ms = topic_config_int(t, "delete.retention.ms", 86400000);
	t->min_compaction_lag_ms = topic_config_int(t, "min.compaction.lag.ms", 0);
}

static void topic_resolve(struct topic *t, const struct broker_config *bc)
{
	t->segment_bytes = topic_config_int(t, "segment.bytes", bc->log_segment_bytes);
	t->segment_ms = topic_config_int(t, "segment.ms", bc->log_roll_ms);
	t->max_message_bytes = (int32_t)topic_config_int(t, "max.message.bytes", bc->message_max_bytes);
	t->index_interval_bytes = (int32_t)topic_config_int(t, "index.interval.bytes",
							    bc->log_index_interval_bytes);
	t->retention_ms = topic_config_int(t, "retention.ms", bc->log_retention_ms);
	t->retention_bytes = topic_config_int(t, "retention.bytes", bc->log_retention_bytes);
	const char *tt = topic_config_get(t, "message.timestamp.type");
	t->log_append_time = tt != NULL && strcmp(tt, "LogAppendTime") == 0;
	topic_resolve_compaction(t);
}

/* Write the whole state to a temporary file, sync it, rename it over the
 * old one and sync the directory: after a crash either the old or the new
 * file is there, whole. */
static int metadata_persist(struct metadata *md)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/metadata", md->dir);
	snprintf(tmp, sizeof(tmp), "%s/metadata.tmp", md->dir);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	fprintf(f, "cluster.id %s\nproducer.id.block.end %lld\n", md->cluster_id,
		(long long)md->producer_id_block_end);
	for (int i = 0; i < md->n_topics; i++) {
		const struct topic *t = md->topics[i];
		char hex[33];
		uuid_to_hex(&t->id, hex);
		fprintf(f, "topic %s %s %d", t->name, hex, t->partitions);
		for (int j = 0; j < t->n_configs; j++)
			fprintf(f, " %s=%s", t->configs[j].key, t->configs[j].value);
		fputc('\n', f);
	}
	int rc = 0;
	if (fflush(f) != 0 || fdatasync(fileno(f)) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0) {
		int dfd = open(md->dir, O_RDONLY | O_DIRECTORY);
		if (dfd < 0 || fsync(dfd) != 0)
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	return rc;
}

static int metadata_parse_topic(struct metadata *md, char *rest)
{
	if (md->n_topics >= TOPICS_MAX)
		return -ENOSPC;
	struct topic *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	char *save = NULL;
	char *name = strtok_r(rest, " \n", &save);
	char *hex = strtok_r(NULL, " \n", &save);
	char *parts = strtok_r(NULL, " \n", &save);
	if (name == NULL || hex == NULL || parts == NULL || strlen(name) > TOPIC_NAME_LEN_MAX ||
	    uuid_from_hex(hex, &t->id) != 0 || atoi(parts) <= 0) {
		free(t);
		return -EINVAL;
	}
	strcpy(t->name, name);
	t->partitions = atoi(parts);
	char *kv;
	while ((kv = strtok_r(NULL, " \n", &save)) != NULL && t->n_configs < TOPIC_CONFIGS_MAX) {
		char *eq = strchr(kv, '=');
		if (eq == NULL || (size_t)(eq - kv) >= sizeof(t->configs[0].key) ||
		    strlen(eq + 1) > TOPIC_CONFIG_VALUE_LEN_MAX)
			continue;
		*eq = '\0';
		strcpy(t->configs[t->n_configs].key, kv);
		strcpy(t->configs[t->n_configs].value, eq + 1);
		t->n_configs++;
	}
	topic_resolve(t, md->bc);
	md->topics[md->n_topics++] = t;
	return 0;
}

static int metadata_load(struct metadata *md, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		lineno++;
		if (strncmp(line, "cluster.id ", 11) == 0)
			rc = sscanf(line + 11, "%31s", md->cluster_id) == 1 ? 0 : -EINVAL;
		else if (strncmp(line, "producer.id.block.end ", 22) == 0)
			md->producer_id_block_end = strtoll(line + 22, NULL, 10);
		else if (strncmp(line, "topic ", 6) == 0)
			rc = metadata_parse_topic(md, line + 6);
		else if (line[0] != '\n')
			rc = -EINVAL;
		if (rc != 0)
			say_error("metadata: %s/metadata line %d is corrupt", md->dir, lineno);
	}
	free(line);
	return rc;
}

struct metadata *metadata_open(const char *data_dir, const struct broker_config *bc, int *err)
{
	struct metadata *md = calloc(1, sizeof(*md));
	if (md == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	md->bc = bc;
	snprintf(md->dir, sizeof(md->dir), "%s/__cluster_metadata", data_dir);
	if (mkdir(md->dir, 0755) != 0 && errno != EEXIST) {
		*err = -errno;
		free(md);
		return NULL;
	}
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/metadata", md->dir);
	FILE *f = fopen(path, "r");
	int rc = 0;
	if (f != NULL) {
		rc = metadata_load(md, f);
		fclose(f);
	} else if (errno == ENOENT) {
		cluster_id_generate(md->cluster_id);
		md->producer_id_block_end = 0;
		rc = metadata_persist(md);
	} else {
		rc = -errno;
	}
	if (rc != 0) {
		*err = rc;
		metadata_close(md);
		return NULL;
	}
	/* Ids below block_end may have been handed out before a crash. */
	md->producer_id_next = md->producer_id_block_end;
	return md;
}

void metadata_close(struct metadata *md)
{
	if (md == NULL)
		return;
	for (int i = 0; i < md->n_topics; i++)
		free(md->topics[i]);
	free(md);
}

const char *metadata_cluster_id(const struct metadata *md)
{
	return md->cluster_id;
}

int metadata_topic_count(const struct metadata *md)
{
	return md->n_topics;
}

const struct topic *metadata_topic_at(const struct metadata *md, int i)
{
	return i >= 0 && i < md->n_topics ? md->topics[i] : NULL;
}

const struct topic *metadata_topic_find(const struct metadata *md, struct kstr name)
{
	for (int i = 0; i < md->n_topics; i++)
		if (kstr_eq_cstr(name, md->topics[i]->name))
			return md->topics[i];
	return NULL;
}

const struct topic *metadata_topic_find_id(const struct metadata *md, struct kuuid id)
{
	for (int i = 0; i < md->n_topics; i++)
		if (memcmp(md->topics[i]->id.b, id.b, sizeof(id.b)) == 0)
			return md->topics[i];
	return NULL;
}

int metadata_topic_create(struct metadata *md, struct kstr name, int32_t partitions,
			  const struct topic_config_entry *configs, int n_configs,
			  const struct topic **out)
{
	if (metadata_topic_find(md, name) != NULL)
		return -EEXIST;
	if (md->n_topics >= TOPICS_MAX)
		return -ENOSPC;
	struct topic *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	memcpy(t->name, name.ptr, (size_t)name.len);
	t->partitions = partitions;
	do
		uuid_generate(&t->id);
	while (metadata_topic_find_id(md, t->id) != NULL);
	t->n_configs = n_configs < TOPIC_CONFIGS_MAX ? n_configs : TOPIC_CONFIGS_MAX;
	if (t->n_configs > 0)
		memcpy(t->configs, configs, sizeof(configs[0]) * (size_t)t->n_configs);
	topic_resolve(t, md->bc);

	md->topics[md->n_topics++] = t;
	int rc = metadata_persist(md);
	if (rc != 0) {
		md->n_topics--;
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int metadata_topic_delete(struct metadata *md, struct kstr name)
{
	for (int i = 0; i < md->n_topics; i++) {
		if (!kstr_eq_cstr(name, md->topics[i]->name))
			continue;
		struct topic *t = md->topics[i];
		memmove(&md->topics[i], &md->topics[i + 1],
			sizeof(md->topics[0]) * (size_t)(md->n_topics - i - 1));
		md->n_topics--;
		int rc = metadata_persist(md);
		if (rc != 0) {
			memmove(&md->topics[i + 1], &md->topics[i],
				sizeof(md->topics[0]) * (size_t)(md->n_topics - i));
			md->topics[i] = t;
			md->n_topics++;
			return rc;
		}
		free(t);
		return 0;
	}
	return -ENOENT;
}

int metadata_topic_add_partitions(struct metadata *md, struct kstr name, int32_t partitions,
				  const struct topic **out, struct topic **old)
{
	for (int i = 0; i < md->n_topics; i++) {
		struct topic *cur = md->topics[i];
		if (!kstr_eq_cstr(name, cur->name))
			continue;
		if (partitions <= cur->partitions)
			return -EINVAL;
		struct topic *t = malloc(sizeof(*t));
		if (t == NULL)
			return -ENOMEM;
		*t = *cur;
		t->partitions = partitions;
		md->topics[i] = t;
		int rc = metadata_persist(md);
		if (rc != 0) {
			md->topics[i] = cur;
			free(t);
			return rc;
		}
		*out = t;
		*old = cur;
		return 0;
	}
	return -ENOENT;
}

void metadata_topic_release(struct topic *old)
{
	free(old);
}

int metadata_producer_id_alloc(struct metadata *md, int64_t *out)
{
	if (md->producer_id_next >= md->producer_id_block_end) {
		md->producer_id_block_end += PRODUCER_ID_BLOCK;
		int rc = metadata_persist(md);
		if (rc != 0) {
			md->producer_id_block_end -= PRODUCER_ID_BLOCK;
			return rc;
		}
	}
	*out = md->producer_id_next++;
	return 0;
}
