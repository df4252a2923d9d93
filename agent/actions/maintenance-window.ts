import { type MaintenanceConfig, WEEKDAYS } from '../../protocol/config-schema.js';

/**
 * The maintenance window (issue 24), pure: whether an instant is inside it, in the window's time
 * zone, and when it next opens. Local wall-clock rules, so a daylight-saving change moves the
 * window with the shop's clock, not with UTC.
 */
const MINUTE = 60_000;
const formats = new Map<string, Intl.DateTimeFormat>();

function localClock(ms: number, timeZone: string | undefined): { weekday: number; minutes: number } {
  const key = timeZone ?? '';
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      ...(timeZone ? { timeZone } : {}),
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formats.set(key, f);
  }
  let weekday = 0;
  let hour = 0;
  let minute = 0;
  for (const p of f.formatToParts(ms)) {
    if (p.type === 'weekday')
      weekday = WEEKDAYS.indexOf(p.value.toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]);
    else if (p.type === 'hour') hour = Number(p.value);
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { weekday, minutes: hour * 60 + minute };
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function inWindow(ms: number, w: MaintenanceConfig): boolean {
  const { weekday, minutes } = localClock(ms, w.timezone);
  const days = new Set(w.days.map((d) => WEEKDAYS.indexOf(d)));
  const from = toMinutes(w.from);
  const to = toMinutes(w.to);
  if (from === to) return days.has(weekday);
  if (from < to) return days.has(weekday) && minutes >= from && minutes < to;
  // Past midnight: the evening part is the day it opens, the morning part belongs to the day before.
  if (minutes >= from) return days.has(weekday);
  return minutes < to && days.has((weekday + 6) % 7);
}

/** `ms` itself when inside the window, else the first minute it is open after `ms`. */
export function nextWindowStart(ms: number, w: MaintenanceConfig): number {
  if (inWindow(ms, w)) return ms;
  const from = toMinutes(w.from);
  let t = Math.floor(ms / MINUTE) * MINUTE;
  // Jump to the next local `from`, a day at a time. Across a daylight-saving change the jump lands
  // an hour off, so the hour either side is tried too, and the first open minute walked back to.
  for (let i = 0; i < 16; i++) {
    const { minutes } = localClock(t, w.timezone);
    const ahead = (from - minutes + 1440) % 1440 || 1440;
    t += ahead * MINUTE;
    const hit = [t - 60 * MINUTE, t, t + 60 * MINUTE].find((c) => c > ms && inWindow(c, w));
    if (hit !== undefined) {
      let start = hit;
      while (start - MINUTE > ms && inWindow(start - MINUTE, w)) start -= MINUTE;
      return start;
    }
  }
  for (let m = 0; m < 8 * 1440; m++) {
    const c = Math.floor(ms / MINUTE) * MINUTE + m * MINUTE;
    if (c > ms && inWindow(c, w)) return c;
  }
  return ms; // a window with no open minute cannot be written (days has one at least)
}

/** For the action's reason: `mon,tue 02:00–05:00 Europe/Amsterdam`. */
export function describeWindow(w: MaintenanceConfig): string {
  return `${w.days.join(',')} ${w.from}–${w.to} ${w.timezone ?? 'device time'}`;
}
