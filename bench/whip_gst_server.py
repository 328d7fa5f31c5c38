#!/usr/bin/env python3
"""The alternative receiver for bench/whip.sh: a WHIP endpoint made of GStreamer's webrtcbin
(Debian 12's GStreamer 1.22; gst-plugins-rs' whipserversrc is not packaged). Each POSTed offer
gets its own webrtcbin (max-bundle, candidates on 127.0.0.1 only) in one process and one GLib
main loop; every received stream goes through webrtcbin's ICE, DTLS, SRTP and RTP jitter buffer
into a fakesink. That is less work than recording (no depayloading, no muxing, no disk), so
its CPU is a lower bound for a GStreamer recorder.

    whip_gst_server.py PORT      # POST /whip -> 201 + answer; DELETE /whip/N -> 200
"""
import http.server
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstWebRTC', '1.0')
gi.require_version('GstSdp', '1.0')
gi.require_version('Nice', '0.1')
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

Gst.init(None)
sessions = {}
keep = []  # wrappers PyGObject must not drop (see whip_gst.py)
lock = threading.Lock()
counter = [0]


def create(offer, done):
    pipe = Gst.Pipeline.new()
    w = Gst.ElementFactory.make('webrtcbin')
    w.set_property('bundle-policy', GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipe.add(w)
    ice = w.get_property('ice-agent')
    ice.ref()
    keep.append(ice)
    lo = Nice.Address.new()
    lo.set_from_string('127.0.0.1')
    ice.get_property('agent').add_local_address(lo)

    def on_pad(_w, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        q = Gst.ElementFactory.make('queue')
        sink = Gst.ElementFactory.make('fakesink')
        sink.set_property('sync', False)
        sink.set_property('async', False)
        pipe.add(q)
        pipe.add(sink)
        q.link(sink)
        q.sync_state_with_parent()
        sink.sync_state_with_parent()
        pad.link(q.get_static_pad('sink'))

    def on_gathering(_obj, _pspec):
        if w.get_property('ice-gathering-state') == GstWebRTC.WebRTCICEGatheringState.COMPLETE \
                and not done.is_set():
            done.answer = w.get_property('local-description').sdp.as_text()
            done.set()

    def on_answer(promise, _):
        reply = promise.get_reply()
        answer = reply.get_value('answer')
        w.emit('set-local-description', answer, Gst.Promise.new())

    def on_remote_set(_promise, _):
        w.emit('create-answer', None, Gst.Promise.new_with_change_func(on_answer, None))

    w.connect('pad-added', on_pad)
    w.connect('notify::ice-gathering-state', on_gathering)
    pipe.set_state(Gst.State.PLAYING)
    _, msg = GstSdp.SDPMessage.new_from_text(offer)
    desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)
    w.emit('set-remote-description', desc, Gst.Promise.new_with_change_func(on_remote_set, None))
    done.pipe = pipe
    return False


def destroy(pipe):
    pipe.set_state(Gst.State.NULL)
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        offer = self.rfile.read(int(self.headers.get('Content-Length', '0'))).decode()
        done = threading.Event()
        done.answer = None
        GLib.idle_add(create, offer, done)
        if not done.wait(10) or not done.answer:
            self.send_response(500)
            self.end_headers()
            return
        with lock:
            counter[0] += 1
            sid = counter[0]
            sessions[sid] = done.pipe
        body = done.answer.encode()
        self.send_response(201)
        self.send_header('Content-Type', 'application/sdp')
        self.send_header('Location', f'/whip/{sid}')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self):
        try:
            sid = int(self.path.rsplit('/', 1)[1])
        except ValueError:
            sid = -1
        with lock:
            pipe = sessions.pop(sid, None)
        if pipe:
            GLib.idle_add(destroy, pipe)
        self.send_response(200 if pipe else 404)
        self.send_header('Content-Length', '0')
        self.end_headers()


def main():
    loop = GLib.MainLoop()
    threading.Thread(target=loop.run, daemon=True).start()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler)
    print('ready', flush=True)
    srv.serve_forever()


if __name__ == '__main__':
    main()
