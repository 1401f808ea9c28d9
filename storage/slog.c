/*
 * slog: see slog.h.
 */
#include "storage/slog.h"

#include <stdarg.h>
#include <stdio.h>

static void (*slog_logger)(const char *line);

void slog_set_logger(void (*log_line)(const char *line))
{
	slog_logger = log_line;
}

void slog(const char *fmt, ...)
{
	if (slog_logger == NULL)
		return;
	char line[SLOG_LINE_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	slog_logger(line);
}
