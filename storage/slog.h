/*
 * slog: the storage library's few log lines (a filesystem that refuses
 * O_DIRECT, hugepages missing, fault injection on). The library has no
 * logger of its own; the program hands it one line at a time.
 *
 * Threading: the logger is set once at start-up, before any shard runs;
 * slog may then be called from any thread (the logger must allow that).
 */
#ifndef SLUICE_STORAGE_SLOG_H
#define SLUICE_STORAGE_SLOG_H

/* Lines longer than this are cut. */
#define SLOG_LINE_BYTES 512

void slog_set_logger(void (*log_line)(const char *line));

/* Format one line and hand it to the logger (dropped when there is none). */
void slog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
