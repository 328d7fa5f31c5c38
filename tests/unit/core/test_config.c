/* Configuration parsing (src/core/config.c): decimal seconds
 * (VTP_KEYFRAME_INTERVAL) and the node URL (VTP_NODE_URL), table-driven through vtp_config_load with the
 * variable in the environment, as serve reads it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static const struct {
	const char *value;
	int ms; /* -1: refused */
} cases[] = {
	{"10", 10000},   {"2.5", 2500},  {"0", 0},       {"0.0", 0},     {".5", 500},
	{"5.", 5000},    {"0.75", 750},  {"0.5", 500},   {"3600", 3600000}, {"1.001", 1001},
	{"abc", -1},     {"-1", -1},     {"0.1", -1},    {"0.499", -1},  {"1.2345", -1},
	{"", -1},        {".", -1},      {"1e3", -1},    {"inf", -1},    {"nan", -1},
	{" 5", -1},      {"5 ", -1},     {"+5", -1},     {"0x10", -1},   {"1.2.3", -1},
	{"3600.001", -1}, {"99999999999999999999", -1}, {"2.5s", -1},
};

static void test_keyframe_interval(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp_config cfg;
		char err[256] = "";
		char arg0[] = "vtp-recorder";
		char *argv[] = {arg0, NULL};
		int argc = 1;
		int rc;

		setenv("VTP_KEYFRAME_INTERVAL", cases[i].value, 1);
		rc = vtp_config_load(&cfg, 1, &argc, argv, err, sizeof(err));
		if (cases[i].ms < 0) {
			if (rc == 0)
				fail_msg("'%s' accepted as %d ms", cases[i].value, cfg.keyframe_interval_ms);
			assert_non_null(strstr(err, "VTP_KEYFRAME_INTERVAL: invalid value"));
			continue;
		}
		if (rc != 0)
			fail_msg("'%s' refused: %s", cases[i].value, err);
		assert_int_equal(cfg.keyframe_interval_ms, cases[i].ms);
		vtp_config_clear(&cfg);
	}
	unsetenv("VTP_KEYFRAME_INTERVAL");
}

static void test_keyframe_interval_default(void **state)
{
	vtp_config cfg;
	char err[256] = "";
	char arg0[] = "vtp-recorder";
	char *argv[] = {arg0, NULL};
	int argc = 1;

	(void)state;
	unsetenv("VTP_KEYFRAME_INTERVAL");
	assert_int_equal(vtp_config_load(&cfg, 1, &argc, argv, err, sizeof(err)), 0);
	assert_int_equal(cfg.keyframe_interval_ms, 10000);
	vtp_config_clear(&cfg);
}

/* VTP_NODE_URL goes into the request line of every forwarded WHIP request:
 * an origin only. */
static const struct {
	const char *value;
	bool ok;
} node_urls[] = {
	{"http://10.0.0.5:8080", true},   {"https://rec-1.internal:8443/", true},
	{"http://[::1]:8080", true},       {"http://node-a", true},
	{"ftp://10.0.0.5", false},         {"http://", false},
	{"http://10.0.0.5:8080/api", false}, {"http://u:p@10.0.0.5", false},
	{"http://10.0.0.5:0", false},      {"http://10.0.0.5:70000", false},
	{"http://10.0.0.5:80?x=1", false}, {"http://a b", false},
	{"http://[::1", false},            {"10.0.0.5:8080", false},
	{"", false},                       {"http://10.0.0.5:", false},
};

static void test_node_url(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(node_urls) / sizeof(node_urls[0]); i++) {
		vtp_config cfg;
		char err[256] = "";
		char arg0[] = "vtp-recorder";
		char *argv[] = {arg0, NULL};
		int argc = 1;
		int rc;

		setenv("VTP_NODE_URL", node_urls[i].value, 1);
		rc = vtp_config_load(&cfg, 1, &argc, argv, err, sizeof(err));
		if (!node_urls[i].ok) {
			if (rc == 0)
				fail_msg("'%s' accepted", node_urls[i].value);
			assert_non_null(strstr(err, "VTP_NODE_URL: invalid value"));
			continue;
		}
		if (rc != 0)
			fail_msg("'%s' refused: %s", node_urls[i].value, err);
		assert_string_equal(cfg.node_url, node_urls[i].value);
		vtp_config_clear(&cfg);
	}
	unsetenv("VTP_NODE_URL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyframe_interval),
		cmocka_unit_test(test_keyframe_interval_default),
		cmocka_unit_test(test_node_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
