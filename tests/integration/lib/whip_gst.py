#!/usr/bin/env python3
"""A WHIP publisher made of GStreamer's webrtcbin (Debian's gir1.2-gst-plugins-bad-1.0):
videotestsrc -> vp8enc and audiotestsrc -> opusenc, sent with WHIP (RFC 9725) to the
recorder. Prints "connected" once ICE and DTLS are up, then publishes for --seconds
and DELETEs the session. Exit 0 on success, 1 when the recorder refused or the
connection failed. Used by tests/integration/whip.test.mjs."""
import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstWebRTC', '1.0')
gi.require_version('GstSdp', '1.0')
gi.require_version('Nice', '0.1')
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True)
    ap.add_argument('--token', required=True)
    ap.add_argument('--pattern', default='smpte')
    ap.add_argument('--freq', type=int, default=440)
    ap.add_argument('--seconds', type=float, default=10)
    a = ap.parse_args()

    Gst.init(None)
    pipe = Gst.parse_launch(
        'webrtcbin name=w bundle-policy=max-bundle '
        f'videotestsrc is-live=true pattern={a.pattern} ! video/x-raw,width=320,height=240,framerate=15/1 '
        '! videoconvert ! vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=500000 ! rtpvp8pay pt=96 '
        '! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! w. '
        f'audiotestsrc is-live=true wave=sine freq={a.freq} volume=0.4 ! audioconvert ! audioresample '
        '! opusenc ! rtpopuspay pt=111 '
        '! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! w.')
    w = pipe.get_by_name('w')
    # Candidates on loopback only: the test's media stays on 127.0.0.1
    # (libnice would otherwise gather on every interface but lo).
    # (PyGObject drops a reference it was not given when the 'ice-agent'
    # wrapper dies: take one for it and keep the wrapper.)
    ice = w.get_property('ice-agent')
    ice.ref()
    agent = ice.get_property('agent')
    lo = Nice.Address.new()
    lo.set_from_string('127.0.0.1')
    agent.add_local_address(lo)
    loop = GLib.MainLoop()
    state = {'location': None, 'rc': 0, 'connected': False}

    def fail(msg):
        print(f'whip_gst: {msg}', file=sys.stderr, flush=True)
        state['rc'] = 1
        loop.quit()

    def post_offer():
        offer = w.get_property('local-description').sdp.as_text()
        req = urllib.request.Request(a.url, data=offer.encode(), method='POST', headers={
            'Content-Type': 'application/sdp', 'Authorization': f'Bearer {a.token}'})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                answer = res.read().decode()
                state['location'] = urllib.parse.urljoin(a.url, res.headers['Location'])
        except urllib.error.HTTPError as e:
            fail(f'POST answered {e.code}: {e.read().decode(errors="replace")}')
            return False
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        w.emit('set-remote-description', desc, Gst.Promise.new())
        return False

    def on_gathering(obj, _pspec):
        if w.get_property('ice-gathering-state') == GstWebRTC.WebRTCICEGatheringState.COMPLETE \
                and state['location'] is None:
            GLib.idle_add(post_offer)

    def on_offer(promise, _data):
        reply = promise.get_reply()
        offer = reply.get_value('offer')
        w.emit('set-local-description', offer, Gst.Promise.new())

    def on_negotiation_needed(_elem):
        for i in range(2):
            t = w.emit('get-transceiver', i)
            if t:
                t.set_property('direction', GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        w.emit('create-offer', None, Gst.Promise.new_with_change_func(on_offer, None))

    def on_conn(obj, _pspec):
        s = w.get_property('connection-state')
        if s == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and not state['connected']:
            state['connected'] = True
            print('connected', flush=True)
            GLib.timeout_add(int(a.seconds * 1000), loop.quit)
        elif s == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            fail('the connection failed')

    def on_bus(_bus, m):
        if m.type == Gst.MessageType.ERROR:
            err, dbg = m.parse_error()
            fail(f'{err.message} ({dbg})')

    w.connect('on-negotiation-needed', on_negotiation_needed)
    w.connect('notify::ice-gathering-state', on_gathering)
    w.connect('notify::connection-state', on_conn)
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect('message', on_bus)
    GLib.timeout_add(20000, lambda: (fail('not connected within 20 s') if not state['connected'] else None) and False)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    if state['location']:
        req = urllib.request.Request(state['location'], method='DELETE',
                                     headers={'Authorization': f'Bearer {a.token}'})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                print(f'deleted {res.status}', flush=True)
        except urllib.error.HTTPError as e:
            print(f'whip_gst: DELETE answered {e.code}', file=sys.stderr, flush=True)
    pipe.set_state(Gst.State.NULL)
    return state['rc']


if __name__ == '__main__':
    sys.exit(main())
