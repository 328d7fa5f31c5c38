/* Tests for src/auth/policy.c: the whole role x starter x share level x
 * action table (who may do what; per endpoint in docs/openapi.yaml), plus
 * roles and permission names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "core/error.h"

#define OK 0
#define NF VTP_ENOTFOUND
#define FB VTP_EFORBIDDEN

static const vtp_action actions[] = {
	VTP_ACT_VIEW, VTP_ACT_DOWNLOAD, VTP_ACT_STOP, VTP_ACT_DELETE,
	VTP_ACT_RESTORE, VTP_ACT_SHARE, VTP_ACT_MANAGE_SHARES,
	VTP_ACT_ACCESS_LOG, VTP_ACT_TRACKS,
};
#define N_ACTIONS (sizeof(actions) / sizeof(actions[0]))

static const char *const action_names[] = {
	"VIEW", "DOWNLOAD", "STOP", "DELETE", "RESTORE", "SHARE",
	"MANAGE_SHARES", "ACCESS_LOG", "TRACKS",
};

struct row {
	const char *role;
	bool starter;
	int share;
	int want[N_ACTIONS]; /* in the order of actions[] */
};

#define ALL_OK {OK, OK, OK, OK, OK, OK, OK, OK, OK}
#define NO_SHARE {NF, NF, NF, NF, NF, NF, NF, NF, NF}
#define VIEW_SHARE {OK, FB, FB, FB, FB, FB, FB, FB, FB}
#define DOWNLOAD_SHARE {OK, OK, FB, FB, FB, FB, FB, FB, FB}
#define SHARE_SHARE {OK, OK, FB, FB, FB, OK, FB, FB, FB}

static const struct row rows[] = {
	/*                       VIEW DOWNLOAD STOP DELETE RESTORE SHARE MANAGE LOG TRACKS */
	/* admins may do everything on every recording */
	{"admin", false, VTP_PERM_NONE, ALL_OK},
	{"admin", false, VTP_PERM_VIEW, ALL_OK},
	{"admin", false, VTP_PERM_DOWNLOAD, ALL_OK},
	{"admin", false, VTP_PERM_SHARE, ALL_OK},
	{"admin", true, VTP_PERM_NONE, ALL_OK},
	{"admin", true, VTP_PERM_VIEW, ALL_OK},
	{"admin", true, VTP_PERM_DOWNLOAD, ALL_OK},
	{"admin", true, VTP_PERM_SHARE, ALL_OK},
	/* the starter may do everything on their recording */
	{"instructor", true, VTP_PERM_NONE, ALL_OK},
	{"instructor", true, VTP_PERM_VIEW, ALL_OK},
	{"instructor", true, VTP_PERM_DOWNLOAD, ALL_OK},
	{"instructor", true, VTP_PERM_SHARE, ALL_OK},
	{"student", true, VTP_PERM_NONE, ALL_OK},
	{"student", true, VTP_PERM_VIEW, ALL_OK},
	{"student", true, VTP_PERM_DOWNLOAD, ALL_OK},
	{"student", true, VTP_PERM_SHARE, ALL_OK},
	{"service", true, VTP_PERM_NONE, ALL_OK},
	{"service", true, VTP_PERM_VIEW, ALL_OK},
	{"service", true, VTP_PERM_DOWNLOAD, ALL_OK},
	{"service", true, VTP_PERM_SHARE, ALL_OK},
	/* everyone else: only through shares; without one, invisible */
	{"instructor", false, VTP_PERM_NONE, NO_SHARE},
	{"instructor", false, VTP_PERM_VIEW, VIEW_SHARE},
	{"instructor", false, VTP_PERM_DOWNLOAD, DOWNLOAD_SHARE},
	{"instructor", false, VTP_PERM_SHARE, SHARE_SHARE},
	{"student", false, VTP_PERM_NONE, NO_SHARE},
	{"student", false, VTP_PERM_VIEW, VIEW_SHARE},
	{"student", false, VTP_PERM_DOWNLOAD, DOWNLOAD_SHARE},
	{"student", false, VTP_PERM_SHARE, SHARE_SHARE},
	/* the SFU's service account registers tracks anywhere, and is an
	 * ordinary user for everything else */
	{"service", false, VTP_PERM_NONE, {NF, NF, NF, NF, NF, NF, NF, NF, OK}},
	{"service", false, VTP_PERM_VIEW, {OK, FB, FB, FB, FB, FB, FB, FB, OK}},
	{"service", false, VTP_PERM_DOWNLOAD, {OK, OK, FB, FB, FB, FB, FB, FB, OK}},
	{"service", false, VTP_PERM_SHARE, {OK, OK, FB, FB, FB, OK, FB, FB, OK}},
	/* unknown roles get no privileges: not "Admin", not "" */
	{"Admin", false, VTP_PERM_NONE, NO_SHARE},
	{"Admin", false, VTP_PERM_SHARE, SHARE_SHARE},
	{"SERVICE", false, VTP_PERM_NONE, NO_SHARE},
	{"admin ", false, VTP_PERM_NONE, NO_SHARE},
	{"", false, VTP_PERM_NONE, NO_SHARE},
	{"", false, VTP_PERM_VIEW, VIEW_SHARE},
	{NULL, false, VTP_PERM_NONE, NO_SHARE},
	{NULL, false, VTP_PERM_DOWNLOAD, DOWNLOAD_SHARE},
	{NULL, true, VTP_PERM_NONE, ALL_OK},
	/* levels outside the scale count as no share (fail closed) */
	{"student", false, -1, NO_SHARE},
	{"student", false, 4, NO_SHARE},
	{"student", false, 1000, NO_SHARE},
	{"service", false, 4, {NF, NF, NF, NF, NF, NF, NF, NF, OK}},
	{"admin", false, -5, ALL_OK},
};

static void test_policy_table(void **state)
{
	int failures = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];

		for (size_t a = 0; a < N_ACTIONS; a++) {
			int got = vtp_policy_check(r->role, r->starter, r->share,
						   actions[a]);

			if (got != r->want[a]) {
				print_error("role=%s starter=%d share=%d %s: got %d, want %d\n",
					    r->role ? r->role : "(null)", r->starter,
					    r->share, action_names[a], got, r->want[a]);
				failures++;
			}
		}
	}
	assert_int_equal(failures, 0);
}

static void test_unknown_action(void **state)
{
	vtp_action bogus = (vtp_action)99;

	/* refused; still "not found" for someone who cannot see it */
	assert_int_equal(vtp_policy_check("admin", false, 0, bogus), FB);
	assert_int_equal(vtp_policy_check("student", true, 0, bogus), FB);
	assert_int_equal(vtp_policy_check("student", false, VTP_PERM_SHARE, bogus), FB);
	assert_int_equal(vtp_policy_check("student", false, 0, bogus), NF);
	assert_int_equal(vtp_policy_check("service", false, 0, bogus), NF);
	assert_int_equal(vtp_policy_check("student", false, 0, (vtp_action)-1), NF);
}

static void test_roles(void **state)
{
	static const struct {
		const char *role;
		bool valid, can_start;
	} cases[] = {
		{"admin", true, true},
		{"instructor", true, true},
		{"student", true, false},
		{"service", true, false},
		{"Admin", false, false},
		{"INSTRUCTOR", false, false},
		{"teacher", false, false},
		{"admin\n", false, false},
		{" student", false, false},
		{"", false, false},
		{NULL, false, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r = cases[i].role ? cases[i].role : "(null)";

		if (vtp_role_valid(cases[i].role) != cases[i].valid)
			fail_msg("vtp_role_valid(%s)", r);
		if (vtp_policy_can_start(cases[i].role) != cases[i].can_start)
			fail_msg("vtp_policy_can_start(%s)", r);
	}
}

static void test_perm_names(void **state)
{
	static const struct {
		const char *s;
		int level;
	} cases[] = {
		{"view", VTP_PERM_VIEW},
		{"download", VTP_PERM_DOWNLOAD},
		{"share", VTP_PERM_SHARE},
		{"none", VTP_PERM_NONE},
		{"View", VTP_PERM_NONE},
		{"SHARE", VTP_PERM_NONE},
		{"view ", VTP_PERM_NONE},
		{"downloads", VTP_PERM_NONE},
		{"admin", VTP_PERM_NONE},
		{"1", VTP_PERM_NONE},
		{"", VTP_PERM_NONE},
		{NULL, VTP_PERM_NONE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (vtp_perm_parse(cases[i].s) != cases[i].level)
			fail_msg("vtp_perm_parse(%s)", cases[i].s ? cases[i].s : "(null)");

	/* names round-trip */
	for (int level = VTP_PERM_VIEW; level <= VTP_PERM_SHARE; level++)
		assert_int_equal(vtp_perm_parse(vtp_perm_name(level)), level);
	assert_string_equal(vtp_perm_name(VTP_PERM_VIEW), "view");
	assert_string_equal(vtp_perm_name(VTP_PERM_DOWNLOAD), "download");
	assert_string_equal(vtp_perm_name(VTP_PERM_SHARE), "share");
	assert_string_equal(vtp_perm_name(VTP_PERM_NONE), "none");
	assert_string_equal(vtp_perm_name(-1), "none");
	assert_string_equal(vtp_perm_name(4), "none");
	/* the order the policy relies on */
	assert_true(VTP_PERM_NONE < VTP_PERM_VIEW);
	assert_true(VTP_PERM_VIEW < VTP_PERM_DOWNLOAD);
	assert_true(VTP_PERM_DOWNLOAD < VTP_PERM_SHARE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_unknown_action),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_perm_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
