/* The static pages (web/), embedded into the binary at build time with the
 * assembler's .incbin, so a deployed binary needs no files beside it and
 * serves exactly what it was built with. GET /web/<name> serves the names
 * of the table below and nothing else. */
#include "api_int.h"

#include <string.h>

#if !defined(VTP_WEB_DIR) || !defined(VTP_WEB_VENDOR_DIR)
#error "VTP_WEB_DIR and VTP_WEB_VENDOR_DIR must name web/ and the fetched libraries (CMakeLists.txt)"
#endif

#define EMBED(sym, file) EMBED_FROM(sym, VTP_WEB_DIR, file)
#define EMBED_FROM(sym, dir, file)                                              \
	__asm__(".section .rodata\n"                                            \
		".balign 16\n"                                                  \
		".global " #sym "\n" #sym ":\n"                                  \
		".incbin \"" dir "/" file "\"\n"                                \
		".global " #sym "_end\n" #sym "_end:\n"                          \
		".byte 0\n"                                                     \
		".previous\n");                                                 \
	extern const char sym[], sym##_end[]

EMBED(vtp_web_index_html, "index.html");
EMBED(vtp_web_login_js, "login.js");
EMBED(vtp_web_room_html, "room.html");
EMBED(vtp_web_room_js, "room.js");
EMBED(vtp_web_library_html, "library.html");
EMBED(vtp_web_library_js, "library.js");
EMBED(vtp_web_recording_html, "recording.html");
EMBED(vtp_web_recording_js, "recording.js");
EMBED(vtp_web_recordings_js, "recordings.js");
EMBED(vtp_web_common_js, "common.js");
EMBED(vtp_web_style_css, "style.css");
EMBED(vtp_web_player_html, "player.html");
EMBED(vtp_web_player_js, "player.js");
EMBED_FROM(vtp_web_hls_js, VTP_WEB_VENDOR_DIR, "hls.light.min.js");
EMBED_FROM(vtp_web_socketio_js, VTP_WEB_VENDOR_DIR, "socket.io.min.js");

static const struct {
	const char *name;
	const char *type;
	const char *data, *end;
} files[] = {
	{"index.html", "text/html; charset=utf-8", vtp_web_index_html, vtp_web_index_html_end},
	{"login.js", "text/javascript; charset=utf-8", vtp_web_login_js, vtp_web_login_js_end},
	{"room.html", "text/html; charset=utf-8", vtp_web_room_html, vtp_web_room_html_end},
	{"room.js", "text/javascript; charset=utf-8", vtp_web_room_js, vtp_web_room_js_end},
	{"library.html", "text/html; charset=utf-8", vtp_web_library_html, vtp_web_library_html_end},
	{"library.js", "text/javascript; charset=utf-8", vtp_web_library_js, vtp_web_library_js_end},
	{"recording.html", "text/html; charset=utf-8", vtp_web_recording_html, vtp_web_recording_html_end},
	{"recording.js", "text/javascript; charset=utf-8", vtp_web_recording_js, vtp_web_recording_js_end},
	{"recordings.js", "text/javascript; charset=utf-8", vtp_web_recordings_js, vtp_web_recordings_js_end},
	{"common.js", "text/javascript; charset=utf-8", vtp_web_common_js, vtp_web_common_js_end},
	{"style.css", "text/css; charset=utf-8", vtp_web_style_css, vtp_web_style_css_end},
	{"player.html", "text/html; charset=utf-8", vtp_web_player_html, vtp_web_player_html_end},
	{"player.js", "text/javascript; charset=utf-8", vtp_web_player_js, vtp_web_player_js_end},
	{"vendor/hls.light.min.js", "text/javascript; charset=utf-8", vtp_web_hls_js,
	 vtp_web_hls_js_end},
	{"vendor/socket.io.min.js", "text/javascript; charset=utf-8", vtp_web_socketio_js,
	 vtp_web_socketio_js_end},
};

/* Pages load scripts, their stylesheet and media from this origin only
 * (no inline script or style: scripts set styles through the CSSOM); hls.js
 * runs its worker and feeds the <video> from blob: URLs; Socket.IO connects
 * back to this origin (connect-src 'self' covers ws: of the same host). */
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	    "img-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; "     \
	    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

static void serve(vtp_req *r, const char *name)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct MHD_Response *resp;

		if (strcmp(files[i].name, name) != 0)
			continue;
		resp = MHD_create_response_from_buffer((size_t)(files[i].end - files[i].data),
						       (void *)files[i].data, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Content-Security-Policy", CSP);
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
		vtp__reply_response(r, 200, resp, files[i].type, "no-cache");
		return;
	}
	vtp__reply_error(r, 404, "not_found", NULL, "no such page");
}

void vtp__h_web(vtp_req *r)
{
	serve(r, r->params[0]);
}

void vtp__h_web_vendor(vtp_req *r)
{
	char name[128];

	snprintf(name, sizeof(name), "vendor/%s", r->params[0]);
	serve(r, name);
}

/* "/" opens the classroom: the login page, which moves on to the room or
 * the library once signed in. */
void vtp__h_web_root(vtp_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
								    MHD_RESPMEM_PERSISTENT);

	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/web/index.html");
	vtp__reply_response(r, 302, resp, "text/plain; charset=utf-8", "no-cache");
}
