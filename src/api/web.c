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
EMBED(vtp_web_icon_svg, "icon.svg");
EMBED(vtp_web_player_html, "player.html");
EMBED(vtp_web_player_js, "player.js");
EMBED_FROM(vtp_web_hls_js, VTP_WEB_VENDOR_DIR, "hls.light.min.js");
EMBED_FROM(vtp_web_socketio_js, VTP_WEB_VENDOR_DIR, "socket.io.min.js");

#define HTML "text/html; charset=utf-8"
#define JS "text/javascript; charset=utf-8"
#define CSS "text/css; charset=utf-8"
#define SVG "image/svg+xml"
#define ENTRY(name, type, sym) {name, type, sym, sym##_end}

static const struct {
	const char *name;
	const char *type;
	const char *data, *end;
} files[] = {
	ENTRY("index.html", HTML, vtp_web_index_html),
	ENTRY("login.js", JS, vtp_web_login_js),
	ENTRY("room.html", HTML, vtp_web_room_html),
	ENTRY("room.js", JS, vtp_web_room_js),
	ENTRY("library.html", HTML, vtp_web_library_html),
	ENTRY("library.js", JS, vtp_web_library_js),
	ENTRY("recording.html", HTML, vtp_web_recording_html),
	ENTRY("recording.js", JS, vtp_web_recording_js),
	ENTRY("recordings.js", JS, vtp_web_recordings_js),
	ENTRY("common.js", JS, vtp_web_common_js),
	ENTRY("style.css", CSS, vtp_web_style_css),
	ENTRY("icon.svg", SVG, vtp_web_icon_svg),
	ENTRY("player.html", HTML, vtp_web_player_html),
	ENTRY("player.js", JS, vtp_web_player_js),
	ENTRY("vendor/hls.light.min.js", JS, vtp_web_hls_js),
	ENTRY("vendor/socket.io.min.js", JS, vtp_web_socketio_js),
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
