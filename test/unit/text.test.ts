import { describe, expect, it } from 'vitest';
import { howEnded, humanSize, renderTable, tail } from '../../lib/core/text.js';

describe('humanSize', () => {
  it('says bytes whole and larger units with one decimal', () => {
    expect(humanSize(0)).toBe('0 B');
    expect(humanSize(1023)).toBe('1023 B');
    expect(humanSize(1536)).toBe('1.5 KiB');
    expect(humanSize(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(humanSize(3 * 1024 ** 5)).toBe('3072.0 TiB');
  });
});

describe('renderTable', () => {
  it('pads every column but the last to its widest cell, two spaces apart, and trims the line ends', () => {
    expect(renderTable(['A', 'LONG HEAD', 'LAST'], [['wide cell', 'x', 'tail'], ['y', 'z', '']])).toEqual([
      'A          LONG HEAD  LAST',
      'wide cell  x          tail',
      'y          z',
    ]);
  });

  it('takes an indent, a gap and minimum widths, and lets a longer cell widen its column', () => {
    const style = { indent: '  ', gap: ' ', minWidths: [4, 3] };
    expect(renderTable(['R', 'D', 'S'], [['v1', 'd', 'ok']], style)).toEqual(['  R    D   S', '  v1   d   ok']);
    expect(renderTable(['R', 'D', 'S'], [['v1.2.3', 'd', 'ok'], ['v1', 'd', 'ok']], style)).toEqual(['  R      D   S', '  v1.2.3 d   ok', '  v1     d   ok']);
  });

  it('prints the head alone for no rows', () => {
    expect(renderTable(['ONE', 'TWO'], [])).toEqual(['ONE  TWO']);
  });
});

describe('howEnded', () => {
  it('names the signal when there is one, else the exit code', () => {
    expect(howEnded(3, null)).toBe('exit code 3');
    expect(howEnded(null, 'SIGKILL')).toBe('killed by SIGKILL');
    expect(howEnded(0, null)).toBe('exit code 0');
  });
});

describe('tail', () => {
  it('keeps the last characters and marks a cut', () => {
    expect(tail('short', 10)).toBe('short');
    expect(tail('0123456789', 10)).toBe('0123456789');
    expect(tail('0123456789abc', 10)).toBe('…3456789abc');
  });
});
