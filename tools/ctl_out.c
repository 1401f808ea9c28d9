/*
 * ctl_out: sluicectl's tables and JSON strings. See ctl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void ctl_table_init(struct ctl_table *t, int ncols, const char **head)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->head = head;
}

void ctl_table_add(struct ctl_table *t, const char **cells)
{
	if (t->nrows == t->cap) {
		int cap = t->cap ? 2 * t->cap : 16;
		char ***nr = realloc(t->rows, sizeof(*nr) * (size_t)cap);
		if (nr == NULL)
			return; /* out of memory: the row is left out */
		t->rows = nr;
		t->cap = cap;
	}
	char **row = calloc((size_t)t->ncols, sizeof(*row));
	if (row == NULL)
		return;
	for (int j = 0; j < t->ncols; j++)
		row[j] = strdup(cells[j] != NULL ? cells[j] : "-");
	t->rows[t->nrows++] = row;
}

/* A cell padded to width, or the last of its row without padding. */
static void ctl_cell(FILE *out, const char *s, size_t width, bool last)
{
	if (last)
		fprintf(out, "%s\n", s);
	else
		fprintf(out, "%-*s  ", (int)width, s);
}

void ctl_table_print(const struct ctl_table *t, FILE *out)
{
	size_t w[32] = { 0 };
	int nc = t->ncols < 32 ? t->ncols : 32;
	for (int j = 0; j < nc; j++)
		w[j] = strlen(t->head[j]);
	for (int i = 0; i < t->nrows; i++)
		for (int j = 0; j < nc; j++)
			if (t->rows[i][j] != NULL && strlen(t->rows[i][j]) > w[j])
				w[j] = strlen(t->rows[i][j]);
	for (int j = 0; j < nc; j++)
		ctl_cell(out, t->head[j], w[j], j + 1 == nc);
	for (int i = 0; i < t->nrows; i++)
		for (int j = 0; j < nc; j++)
			ctl_cell(out, t->rows[i][j] != NULL ? t->rows[i][j] : "-", w[j], j + 1 == nc);
}

void ctl_table_free(struct ctl_table *t)
{
	for (int i = 0; i < t->nrows; i++) {
		for (int j = 0; j < t->ncols; j++)
			free(t->rows[i][j]);
		free(t->rows[i]);
	}
	free(t->rows);
	memset(t, 0, sizeof(*t));
}

void ctl_json_str(FILE *out, const char *s, int32_t len)
{
	fputc('"', out);
	for (int32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}
