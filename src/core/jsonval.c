/* JSON parameter tables. */
#include "jsonval.h"

#include <string.h>

#include "error.h"

size_t vtp_utf8_length(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* C0 controls, DEL, and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F),
 * which include NEL and CSI: terminals and log viewers act on them. */
static bool has_control(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
	}
	return false;
}

int vtp_json_validate(json_t *obj, const vtp_json_param *params, size_t n,
		      vtp_fail *fail)
{
	if (!json_is_object(obj))
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "",
				    "the request body must be a JSON object");
	for (size_t i = 0; i < n; i++) {
		const vtp_json_param *p = &params[i];
		json_t *v = json_object_get(obj, p->name);

		if (!v || json_is_null(v)) {
			if (p->required)
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s is required", p->name);
			continue;
		}
		if (p->type == VTP_JV_STRING) {
			const char *s;
			size_t len;

			if (!json_is_string(v))
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s must be a string", p->name);
			s = json_string_value(v);
			if (strlen(s) != json_string_length(v))
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s must not contain NUL characters", p->name);
			len = vtp_utf8_length(s);
			if ((long long)len < p->min || (p->max >= 0 && (long long)len > p->max))
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s must be %lld..%lld characters long (got %zu)",
						    p->name, p->min, p->max, len);
			if (p->no_control && has_control(s))
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s must not contain control characters", p->name);
			if (p->choices) {
				bool ok = false;

				for (const char *const *c = p->choices; *c; c++)
					if (strcmp(*c, s) == 0)
						ok = true;
				if (!ok) {
					char list[160] = "";
					size_t used = 0;

					for (const char *const *c = p->choices; *c; c++) {
						int w = snprintf(list + used, sizeof(list) - used,
								 "%s%s", used ? ", " : "", *c);
						if (w < 0 || (size_t)w >= sizeof(list) - used)
							break;
						used += (size_t)w;
					}
					return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
							    "%s must be one of: %s", p->name, list);
				}
			}
		} else if (p->type == VTP_JV_INT) {
			long long x;

			if (!json_is_integer(v))
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s must be an integer", p->name);
			x = json_integer_value(v);
			if (x < p->min || x > p->max)
				return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", p->name,
						    "%s must be between %lld and %lld", p->name,
						    p->min, p->max);
		}
	}
	return 0;
}

const char *vtp_json_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long vtp_json_int(json_t *obj, const char *key, long long def)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? json_integer_value(v) : def;
}
