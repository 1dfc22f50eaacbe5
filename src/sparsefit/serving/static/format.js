/* Number, size, duration and time formatting for the studio's tables and labels. */

export const isNum = (v) => typeof v === "number" && Number.isFinite(v);
export const fmt = (v, digits = 3) => (isNum(v) ? v.toFixed(digits) : "—");
export const pct = (v) => (isNum(v) ? `${Math.round(v * 100)}%` : "—");

export function signed(v, digits = 3) {
  if (!isNum(v)) return "—";
  return (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(digits);
}

export function fmtBytes(n) {
  if (!isNum(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtDuration(sec) {
  if (!isNum(sec)) return "—";
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${String(sec % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function fmtTime(unix) {
  if (!isNum(unix)) return "—";
  const d = new Date(unix * 1000);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

export const basename = (p) => (p ? String(p).split(/[\\/]/).pop() : "");
