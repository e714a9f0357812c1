import { isIP } from 'node:net';

// A leaf module (only node:net): config validates `uploads.url_fetch.allow_hosts` with it.

/** One entry of `uploads.url_fetch.allow_hosts`: a host name, an IP address or a CIDR range. */
export function isAllowEntry(entry: string): boolean {
  const slash = entry.indexOf('/');
  if (slash >= 0) {
    const ip = entry.slice(0, slash);
    const prefix = entry.slice(slash + 1);
    const family = isIP(ip);
    return family !== 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  }
  return isIP(entry) !== 0 || /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(entry);
}
