// Links to what containers publish: a published port as `http://host:port/`, opened in the
// user's browser by the app (`system_open_url`), not inside the app's window.

import { call } from "./api.js";
import { h, showError } from "./dom.js";

/** `http://host:port/` for a published port: wildcard addresses open on localhost. */
export function portUrl(hostIp, hostPort) {
  const ip = !hostIp || hostIp === "0.0.0.0" || hostIp === "::" ? "localhost" : hostIp;
  return `http://${ip.includes(":") ? `[${ip}]` : ip}:${hostPort}/`;
}

/** A link showing `text` that opens `url` in the browser. */
export function urlLink(url, text, testid) {
  const a = h("a", { href: url, testid, title: `Open ${url} in the browser` }, text);
  a.addEventListener("click", (ev) => {
    ev.preventDefault();
    call("system_open_url", { url }).catch(showError);
  });
  return a;
}
