/* The search page's socket, opened before the chart library and search.js have run: its
 * handshake and first message (the partial snapshot after the page's embedded one) overlap
 * the first draw. It only opens the socket and keeps what arrives; search.js adopts it
 * (`window.studioSearchSocket.adopt`) and replays the kept events in order.
 */
(function () {
  "use strict";

  const node = document.getElementById("sp-search");
  if (!node || typeof WebSocket === "undefined") return;
  const search = JSON.parse(node.textContent);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const url = scheme + location.host + "/ws/searches/" + search.id + "/?after=" +
    encodeURIComponent(search.seq);
  const socket = new WebSocket(url);
  const kept = []; // [type, event] until adopted
  let adopted = false;
  for (const type of ["open", "message", "close"]) {
    socket.addEventListener(type, (event) => { if (!adopted) kept.push([type, event]); });
  }
  window.studioSearchSocket = {
    seq: search.seq, // the seq the socket was opened after
    /** Hands the socket over once: `handlers` get the kept events, then the live ones. */
    adopt(handlers) {
      if (adopted) return null;
      adopted = true;
      for (const [type, handler] of Object.entries(handlers)) {
        socket.addEventListener(type, handler);
      }
      for (const [type, event] of kept.splice(0)) {
        if (handlers[type]) handlers[type](event);
      }
      return socket;
    },
  };
})();
