/** Argument parsers for commander; a bad value is a usage error (exit 2). */
import { InvalidArgumentError } from 'commander';

export function parsePid(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`"${value}" is not a PID`);
  }
  return Number(value);
}

export function collectPids(value: string, previous: number[] = []): number[] {
  return [...previous, parsePid(value)];
}

/** CRIU's `--network-lock` methods (ckpt's own list: api/dump.ts). */
export function parseNetworkLock(value: string): 'nftables' | 'iptables' | 'skip' {
  if (value !== 'nftables' && value !== 'iptables' && value !== 'skip') {
    throw new InvalidArgumentError(`"${value}" is not a network lock method (nftables, iptables, skip)`);
  }
  return value;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A whole number of seconds, 1 or more (CRIU's --timeout). */
export function parseSeconds(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`"${value}" is not a number of seconds`);
  }
  return Number(value);
}

/** A TCP port, 0-65535 (0 for a server: any free port). */
export function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError(`"${value}" is not a TCP port`);
  return Number(value);
}
