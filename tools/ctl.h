/*
 * ctl: the inside of sluicectl, shared by its files only.
 *
 *   sluicectl.c    global options, command dispatch, usage, exit status
 *   ctl_group.c    group list | describe | delete | reset-offsets
 *   ctl_cgroup.c   describe of a consumer group (KIP-848: ConsumerGroupDescribe)
 *   ctl_out.c      tables and JSON on stdout
 *   kclient.[ch]   the Kafka-protocol client underneath
 *
 * Exit status: 0 done, 1 the broker refused or failed (the message says
 * which request and which Kafka error), 2 a usage error.
 */
#ifndef SLUICE_TOOLS_CTL_H
#define SLUICE_TOOLS_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kclient.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILED 1
#define CTL_EXIT_USAGE 2

/* Groups or topics one command names. */
#define CTL_NAMES_MAX 1024

struct ctl {
	const char *bootstrap;
	int timeout_ms;
	bool json;
	struct kc_cluster k; /* opened by the command */
};

int ctl_group(struct ctl *ctl, int argc, char **argv);
void ctl_group_usage(FILE *out);

/* Print "sluicectl: ..." on stderr; returns CTL_EXIT_FAILED. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- output (ctl_out.c) ---- */

/* A table printed with aligned columns once complete. */
struct ctl_table {
	int ncols;
	const char **head;
	char ***rows; /* rows[i][j], owned */
	int nrows, cap;
};

void ctl_table_init(struct ctl_table *t, int ncols, const char **head);
/* Add a row of ncols C strings (copied). */
void ctl_table_add(struct ctl_table *t, const char **cells);
void ctl_table_print(const struct ctl_table *t, FILE *out);
void ctl_table_free(struct ctl_table *t);

/* A JSON string literal (quotes included) for s of len bytes. */
void ctl_json_str(FILE *out, const char *s, int32_t len);
static inline void ctl_json_kstr(FILE *out, struct kstr s)
{
	if (s.len < 0)
		fputs("null", out);
	else
		ctl_json_str(out, s.ptr, s.len);
}

#endif
