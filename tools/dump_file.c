/*
 * dump_file: reading one file for sluice-dump through a bounded window, and
 * the helpers every dumper shares (problem reports, quoting, file names).
 *
 * A segment may be a gigabyte; the window holds one chunk, or one batch
 * when a batch is larger, so memory stays bounded by BATCH_BYTES_MAX
 * whatever the file's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "dump_limits.h"
#include "storage/segment.h"

int dump_file_open(struct dump_file *f, const char *path)
{
	*f = (struct dump_file){ .path = path, .fd = -1 };
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		int err = -errno;
		dump_file_close(f);
		return err;
	}
	if (S_ISDIR(st.st_mode)) {
		dump_file_close(f);
		return -EISDIR;
	}
	f->size = st.st_size;
	/* Most reads go front to back: let the kernel read ahead. */
	posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

void dump_file_close(struct dump_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->buf);
	f->buf = NULL;
	f->cap = f->len = 0;
}

const uint8_t *dump_file_get(struct dump_file *f, int64_t pos, size_t n, int *err)
{
	*err = 0;
	if (pos < 0 || pos > f->size || (int64_t)n > f->size - pos)
		return NULL;
	if (pos >= f->buf_pos && pos + (int64_t)n <= f->buf_pos + (int64_t)f->len)
		return f->buf + (pos - f->buf_pos);
	size_t want = DUMP_READ_CHUNK_BYTES;
	if ((int64_t)want > f->size - pos)
		want = (size_t)(f->size - pos);
	if (want < n)
		want = n;
	if (want > f->cap) {
		uint8_t *nb = realloc(f->buf, want);
		if (nb == NULL) {
			*err = -ENOMEM;
			return NULL;
		}
		f->buf = nb;
		f->cap = want;
	}
	ssize_t r = pread_full(f->fd, f->buf, want, pos);
	f->buf_pos = pos;
	f->len = r < 0 ? 0 : (size_t)r;
	if (r < 0 || (size_t)r < n) {
		/* Shorter than fstat said: the file shrank under us. */
		*err = r < 0 ? (int)r : -EIO;
		return NULL;
	}
	return f->buf;
}

int dump_file_zero_from(struct dump_file *f, int64_t pos, int64_t *nonzero_pos)
{
	while (pos < f->size) {
		int64_t left = f->size - pos;
		size_t n = left < DUMP_READ_CHUNK_BYTES ? (size_t)left : DUMP_READ_CHUNK_BYTES;
		int err;
		const uint8_t *p = dump_file_get(f, pos, n, &err);
		if (p == NULL)
			return err != 0 ? err : -EIO;
		for (size_t i = 0; i < n; i++) {
			if (p[i] != 0) {
				*nonzero_pos = pos + (int64_t)i;
				return 0;
			}
		}
		pos += (int64_t)n;
	}
	return 1;
}

int64_t dump_file_content_end(struct dump_file *f)
{
	int64_t end = f->size;
	while (end > 0) {
		size_t n = end < DUMP_READ_CHUNK_BYTES ? (size_t)end : DUMP_READ_CHUNK_BYTES;
		int err;
		const uint8_t *p = dump_file_get(f, end - (int64_t)n, n, &err);
		if (p == NULL)
			return err != 0 ? err : -EIO;
		for (size_t i = n; i > 0; i--)
			if (p[i - 1] != 0)
				return end - (int64_t)n + (int64_t)i;
		end -= (int64_t)n;
	}
	return 0;
}

void dump_problem(struct dump_file *f, int64_t pos, const char *fmt, ...)
{
	/* stdout first, so that the problem shows up in order in the dump
	 * when both go to one terminal or file. */
	fflush(stdout);
	fprintf(stderr, "sluice-dump: %s: position %lld: ", f->path, (long long)pos);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	f->problems++;
}

int dump_cannot_read(const char *path, int err)
{
	fflush(stdout);
	fprintf(stderr, "sluice-dump: %s: cannot read: %s\n", path, strerror(-err));
	return -1;
}

void dump_print_bytes(FILE *out, const uint8_t *p, int64_t n, int64_t max)
{
	if (n < 0) {
		fputs("null", out);
		return;
	}
	int64_t shown = max > 0 && n > max ? max : n;
	fputc('"', out);
	for (int64_t i = 0; i < shown; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, out);
		else
			fprintf(out, "\\x%02x", c);
	}
	fputc('"', out);
	if (shown < n)
		fprintf(out, "...(%lld more bytes)", (long long)(n - shown));
}

int64_t dump_name_offset(const char *path, const char *ext)
{
	const char *name = strrchr(path, '/');
	return segment_name_offset(name ? name + 1 : path, ext);
}

int dump_sibling_path(char *buf, size_t cap, const char *path, const char *ext)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(path, '.');
	size_t stem = dot != NULL && (slash == NULL || dot > slash) ? (size_t)(dot - path)
								     : strlen(path);
	int n = snprintf(buf, cap, "%.*s%s", (int)stem, path, ext);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

bool dump_segment_sealed(const char *path, int64_t base)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int n = slash == NULL ? snprintf(dir, sizeof(dir), ".")
			      : snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return false;
	if (dir[0] == '\0')
		strcpy(dir, "/");
	int64_t *bases = NULL;
	int count = segment_dir_offsets(dir, ".log", &bases);
	bool later = count > 0 && bases[count - 1] > base;
	free(bases);
	return later;
}

const char *dump_codec_name(int codec)
{
	static const char *const names[] = { "none", "gzip", "snappy", "lz4", "zstd" };
	static char other[32];
	if (codec >= 0 && codec < (int)(sizeof(names) / sizeof(names[0])))
		return names[codec];
	snprintf(other, sizeof(other), "unknown(%d)", codec);
	return other;
}
