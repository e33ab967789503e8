// Relative times that stay true. The engine's container status ("Up 5 minutes", "Exited (0) 2
// hours ago") is a duration rendered when the list was fetched; an element marked with
// `liveStatus` keeps when that was and recomputes its tooltip whenever it is about to be shown
// (pointer over it, keyboard focus). No timer: nothing runs while nobody looks.

const PHRASE = /Less than a second|About a minute|About an hour|\d+ (?:second|minute|hour|day|week|month|year)s?/;
const UNIT = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800, month: 2592000, year: 31536000 };

/** Seconds in one of Docker's duration phrases (`HumanDuration`), or null. */
export function parseHuman(p) {
  if (p === "Less than a second") return 0;
  if (p === "About a minute") return 60;
  if (p === "About an hour") return 3600;
  const m = /^(\d+) (second|minute|hour|day|week|month|year)s?$/.exec(p);
  return m ? Number(m[1]) * UNIT[m[2]] : null;
}

/** Docker's `HumanDuration` (go-units) for `s` seconds. */
export function human(s) {
  const sec = Math.floor(s);
  if (sec < 1) return "Less than a second";
  if (sec === 1) return "1 second";
  if (sec < 60) return `${sec} seconds`;
  const min = Math.floor(s / 60);
  if (min === 1) return "About a minute";
  if (min < 60) return `${min} minutes`;
  const hours = Math.floor(s / 3600 + 0.5);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(s / 3600 / 24 / 365)} years`;
}

/**
 * Attributes for an element whose tooltip is the engine's `status`, fetched `now`: the tooltip
 * is recomputed from the time the status was true, each time it is shown.
 */
export function liveStatus(status, now = Date.now()) {
  const m = PHRASE.exec(status || "");
  const secs = m && parseHuman(m[0]);
  if (secs === null || secs === undefined) return { title: status };
  return {
    title: status,
    "data-status-template": status.replace(m[0], "{}"),
    "data-status-since": String(now - secs * 1000),
  };
}

function refresh(el) {
  const since = Number(el.dataset.statusSince);
  el.title = el.dataset.statusTemplate.replace("{}", human((Date.now() - since) / 1000));
}

/** Recomputes a live tooltip when the pointer or the focus reaches it. */
export function watchTimes() {
  for (const type of ["mouseover", "focusin"]) {
    document.addEventListener(type, (ev) => {
      const el = ev.target instanceof Element && ev.target.closest("[data-status-since]");
      if (el) refresh(el);
    }, { passive: true });
  }
}
