// Record mediasoup v3 producers with vtp-recorder: a sketch to start from
// (docs/integrations/mediasoup.md explains each step).
//
// NOT TESTED. mediasoup cannot be installed where vtp-recorder is tested (its
// worker build downloads its own dependencies), so this file has never run.
// The API names are checked against mediasoup 3's TypeScript types as of
// 3.14 and later (node/src/PlainTransportTypes.ts: PlainTransportOptions with
// listenInfo, connect(); ConsumerTypes.ts: ConsumerOptions, Consumer and its
// events); the recorder's side of each step is tested with other senders
// (see the doc).
//
// Use from the app that owns the router, Node 18 or later (fetch):
//
//   import { recordProducer } from './mediasoup-record.mjs';
//   // a producer appears (or the recording starts: do it for every existing producer)
//   const rec = await recordProducer(router, producer, {
//     recorder: 'http://10.0.0.5:8080', token: process.env.VTP_TOKEN, recordingId,
//     peerId: peer.id, fullName: peer.displayName, listenIp: '10.0.0.4',
//   });
//   // the peer leaves, or you stop recording them: rec.close()
//   // hold a participant out of the recording for a while: rec.pause() / rec.resume()
//
// One call per producer: one PlainTransport and one consumer each, because a
// recorder track is one UDP port. Give a peer's audio and video the same
// peerId (the composer puts them in one tile).

const RECORDABLE = new Set(['audio/opus', 'video/vp8', 'video/h264']);
// what the recorder sends back: NACK, PLI and FIR (no transport-cc, no REMB needed)
const FEEDBACK = new Set(['nack', 'nack pli', 'ccm fir']);

/**
 * The "device" capabilities the consumer is made for: the router's
 * recordable codecs of the producer's kind, without RTX (the recorder takes
 * one payload type per track; retransmissions then come as the original
 * packets) and without header extensions.
 */
function recorderCapabilities(router, kind) {
  return {
    codecs: router.rtpCapabilities.codecs
      .filter((c) => c.kind === kind && RECORDABLE.has(c.mimeType.toLowerCase()))
      .map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback || []).filter((f) => FEEDBACK.has(`${f.type}${f.parameter ? ` ${f.parameter}` : ''}`)) })),
    headerExtensions: [],
  };
}

async function api(opts, method, path, body) {
  const res = await fetch(new URL(path, opts.recorder), {
    method,
    headers: { Authorization: `Bearer ${opts.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, text };
}

/**
 * Sends one producer to a recording. opts: recorder (base URL), token (role
 * service, or the recording's starter), recordingId, peerId, fullName,
 * userId?, role?, listenIp (the address of this host the recorder can send
 * feedback to), srtp? (true: SRTP both ways, mediasoup's key for its media,
 * the recorder's for its RTCP). Resolves { trackId, pause, resume, close }.
 */
export async function recordProducer(router, producer, opts) {
  const rtpCapabilities = recorderCapabilities(router, producer.kind);
  if (!router.canConsume({ producerId: producer.id, rtpCapabilities })) {
    throw new Error(`producer ${producer.id}: its codec is not one the recorder takes (Opus, VP8, H.264)`);
  }
  // comedia off: mediasoup sends to the address connect() gives; rtcpMux: the
  // recorder's one port carries RTP and RTCP both ways
  const transport = await router.createPlainTransport({
    listenInfo: { protocol: 'udp', ip: opts.listenIp },
    rtcpMux: true,
    comedia: false,
    ...(opts.srtp ? { enableSrtp: true, srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80' } : {}),
  });
  let trackId = null;
  let closed = false;
  try {
    // paused until the recorder listens; for a simulcast producer the consumer
    // sends one stream (the highest layer by default: preferredLayers)
    const consumer = await transport.consume({ producerId: producer.id, rtpCapabilities, paused: true });
    const codec = consumer.rtpParameters.codecs[0];
    const encoding = consumer.rtpParameters.encodings[0];
    if (codec.payloadType >= 64 && codec.payloadType <= 95) {
      // the recorder refuses these on a muxed port (RFC 5761); mediasoup assigns 100..127 and 96..99
      // unless the router's mediaCodecs set a preferredPayloadType
      throw new Error(`payload type ${codec.payloadType} collides with RTCP`);
    }
    const reg = await api(opts, 'POST', `/api/v1/recordings/${opts.recordingId}/tracks`, {
      peerId: opts.peerId,
      fullName: opts.fullName,
      ...(opts.userId ? { userId: opts.userId } : {}),
      ...(opts.role ? { role: opts.role } : {}),
      kind: consumer.kind,
      codec: codec.mimeType.split('/')[1].toLowerCase(),
      payloadType: codec.payloadType,
      clockRate: codec.clockRate,
      ssrc: encoding.ssrc,
      // mediasoup picks its own SRTP key: the recorder decrypts with it
      ...(opts.srtp ? { srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', keyBase64: transport.srtpParameters.keyBase64 } } : {}),
    });
    if (reg.status !== 201) throw new Error(`register track: ${reg.status} ${reg.text}`);
    trackId = reg.json.trackId;
    // the answer's key protects what the recorder sends back (its RTCP)
    await transport.connect({
      ip: reg.json.ip,
      port: reg.json.port,
      ...(opts.srtp ? { srtpParameters: { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80', keyBase64: reg.json.srtp.keyBase64 } } : {}),
    });
    await consumer.resume();
    // the recorder asks too (PLI with back-off until a keyframe); asking here saves a round trip
    if (consumer.kind === 'video') await consumer.requestKeyFrame();

    const close = async () => {
      if (closed) return;
      closed = true;
      transport.close(); // closes the consumer
      const r = await api(opts, 'DELETE', `/api/v1/recordings/${opts.recordingId}/tracks/${trackId}`);
      // 409 not_active: the recording has stopped, and its tracks with it
      if (r.status !== 200 && r.status !== 409 && r.status !== 404) throw new Error(`end track: ${r.status} ${r.text}`);
    };
    const fail = (e) => console.error(`recording of producer ${producer.id}: ${e.message}`);
    // the producer went away (peer left, track stopped) or the router closed: the track ends
    consumer.on('producerclose', () => close().catch(fail));
    consumer.on('transportclose', () => close().catch(fail));
    // a muted camera/microphone: mediasoup stops sending, the track goes idle (no
    // picture or sound for that time); after the resume a keyframe restarts the picture
    consumer.on('producerresume', () => {
      if (consumer.kind === 'video' && !consumer.paused) consumer.requestKeyFrame().catch(fail);
    });

    return {
      trackId,
      consumer,
      transport,
      /** Holds this producer out of the recording (the track stays registered). */
      pause: () => consumer.pause(),
      /** Back in the recording: a keyframe request so the picture restarts at once. */
      resume: async () => {
        await consumer.resume();
        if (consumer.kind === 'video') await consumer.requestKeyFrame();
      },
      close,
    };
  } catch (e) {
    transport.close();
    if (trackId) await api(opts, 'DELETE', `/api/v1/recordings/${opts.recordingId}/tracks/${trackId}`).catch(() => {});
    throw e;
  }
}
