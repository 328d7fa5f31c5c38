/* Configuration parsing (src/core/config.c): decimal seconds
 * (VTP_KEYFRAME_INTERVAL), table-driven through vtp_config_load with the
 * variable in the environment, as serve reads it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyframe_interval),
		cmocka_unit_test(test_keyframe_interval_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
