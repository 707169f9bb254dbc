/*
 * jsonv.c: checked access to the fields of an untrusted JSON object (stage: ingest,
 * admin). Never trusts a type, a length or a count it has not checked; every error
 * names the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"

const char *
jv_type_name(const cJSON *v)
{
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsBool(v))
		return "boolean";
	if (cJSON_IsNumber(v))
		return "number";
	if (cJSON_IsString(v))
		return "string";
	if (cJSON_IsArray(v))
		return "array";
	if (cJSON_IsObject(v))
		return "object";
	return "nothing";
}

int
jv_nomem(struct err *err, const char *field)
{
	return err_set(err, ERR_NOMEM, "no_memory", field, "%s: out of memory", field);
}

int
jv_bad_type(struct err *err, const char *field, const char *want, const cJSON *v)
{
	return err_set(err, ERR_INPUT, "bad_type", field, "%s: expected %s, got %s", field,
	    want, jv_type_name(v));
}

int
jv_bad_value(struct err *err, const char *field, const char *what)
{
	return err_set(err, ERR_INPUT, "bad_value", field, "%s: %s", field, what);
}

int
jv_missing(struct err *err, const char *field)
{
	return err_set(err, ERR_INPUT, "missing_field", field, "%s: required field is missing",
	    field);
}

int
jv_check_unique(const cJSON *obj, const char *const *names, size_t n,
    const char *prefix, struct err *err)
{
	char path[64];
	size_t i;

	for (i = 0; i < n; i++) {
		const cJSON *c;
		int seen = 0;

		for (c = obj->child; c != NULL; c = c->next) {
			if (c->string == NULL || strcmp(c->string, names[i]) != 0 || !seen++)
				continue;
			snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
			    names[i]);
			return err_set(err, ERR_INPUT, "bad_value", path,
			    "%s: appears more than once", path);
		}
	}
	return 0;
}

const cJSON *
jv_field(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsNull(v) ? NULL : v;
}

int
jv_has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

void
jv_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

void
jv_upper(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

int
jv_take_string(const cJSON *v, const char *field, size_t max, char **out,
    struct err *err)
{
	size_t n;

	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return jv_bad_type(err, field, "a string", v);
	n = strlen(v->valuestring);
	if (n == 0)
		return jv_bad_value(err, field, "empty");
	if (n > max)
		return err_set(err, ERR_INPUT, "too_long", field, "%s: %zu bytes, at most %zu",
		    field, n, max);
	if ((*out = strdup(v->valuestring)) == NULL)
		return jv_nomem(err, field);
	return 0;
}

int
jv_strlist(const cJSON *obj, const char *name, const char *field, size_t max,
    struct strlist *out, struct err *err)
{
	const cJSON *v = jv_field(obj, name), *c;
	size_t n, i = 0;

	if (v == NULL)
		return 0;
	if (!cJSON_IsArray(v))
		return jv_bad_type(err, field, "an array of strings", v);
	n = (size_t)cJSON_GetArraySize(v);
	if (n > MODEL_LIST_MAX)
		return err_set(err, ERR_INPUT, "too_long", field, "%s: %zu items, at most %d",
		    field, n, MODEL_LIST_MAX);
	if (n == 0)
		return 0;
	if ((out->v = calloc(n, sizeof(*out->v))) == NULL)
		return jv_nomem(err, field);
	for (c = v->child; c != NULL; c = c->next, i++) {
		const char *s = cJSON_IsString(c) ? c->valuestring : NULL;
		size_t len = s != NULL ? strlen(s) : 0;

		if (s == NULL)
			return err_set(err, ERR_INPUT, "bad_type", field,
			    "%s[%zu]: expected a string, got %s", field, i, jv_type_name(c));
		if (len == 0 || jv_has_control(s))
			return err_set(err, ERR_INPUT, "bad_value", field,
			    "%s[%zu]: empty or contains a control character", field, i);
		if (len > max)
			return err_set(err, ERR_INPUT, "too_long", field,
			    "%s[%zu]: %zu bytes, at most %zu", field, i, len, max);
		if ((out->v[i] = strdup(s)) == NULL)
			return jv_nomem(err, field);
		out->n = i + 1;
		jv_lower(out->v[i]);
	}
	return 0;
}

void
jv_strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
