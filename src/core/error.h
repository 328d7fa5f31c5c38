/* One error type for the whole program: 0 is success, every failure is a
 * negative VTP_E* code. vtp_strerror() names it; the HTTP layer maps codes to
 * statuses in one table (src/api/response.c). */
#ifndef VTP_CORE_ERROR_H
#define VTP_CORE_ERROR_H

enum {
	VTP_OK = 0,
	VTP_EINVAL = -1,     /* invalid input */
	VTP_ENOTFOUND = -2,  /* no such object (or not visible) */
	VTP_ECONFLICT = -3,  /* state conflict, unique violation */
	VTP_EFORBIDDEN = -4, /* authenticated but not allowed */
	VTP_EUNAUTH = -5,    /* missing / bad credentials */
	VTP_EIO = -6,        /* file or socket I/O */
	VTP_EDB = -7,        /* database fault */
	VTP_EUNAVAIL = -8,   /* dependency down */
	VTP_ETOOBIG = -9,    /* over a size cap */
	VTP_ERANGE = -10,    /* value out of range */
	VTP_EINTERNAL = -11, /* bug or library fault */
	VTP_ELIMIT = -12,    /* rate limited */
};

const char *vtp_strerror(int err);

#endif
