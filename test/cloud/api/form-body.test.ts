import { describe, expect, it } from 'vitest';
import { MAX_FORM_FIELDS, parseFormBody } from '../../../cloud/api/form-body.js';
import { Refusal } from '../../../protocol/refusal.js';

const refused = (text: string) => {
  try {
    parseFormBody(text);
  } catch (err) {
    if (err instanceof Refusal) return [err.code, err.message];
    throw err;
  }
  throw new Error('expected a refusal');
};

describe('form bodies (cloud/api/form-body.ts)', () => {
  it('reads curl -d bodies into the object a JSON body would be', () => {
    expect(parseFormBody('activationCode=ACT-7X9K-2M4P&locationId=loc_7Yz4')).toEqual({
      activationCode: 'ACT-7X9K-2M4P',
      locationId: 'loc_7Yz4',
    });
    expect(parseFormBody('displayName=Counter+3&note=a%26b%3Dc')).toEqual({
      displayName: 'Counter 3',
      note: 'a&b=c',
    });
    expect(parseFormBody('tip[mode]=percentage&tip[suggestions][]=10&tip[suggestions][]=15')).toEqual({
      tip: { mode: 'percentage', suggestions: ['10', '15'] },
    });
    expect(parseFormBody('events[]=terminal.*')).toEqual({ events: ['terminal.*'] });
    expect(parseFormBody('flag&&x=')).toEqual({ flag: '', x: '' });
    expect(Object.getPrototypeOf(parseFormBody('a=1'))).toBe(Object.prototype);
  });

  it('refuses what it cannot read, with the reason', () => {
    expect(refused('a=%zz')).toEqual(['invalid_form', 'form field "a=%zz" is not valid percent-encoding']);
    expect(refused('a=1&a=2')).toEqual(['invalid_form', 'form field "a" is given twice']);
    expect(refused('__proto__[x]=1')).toEqual([
      'invalid_form',
      'form field name "__proto__[x]" is not allowed',
    ]);
    expect(refused('a[constructor]=1')[1]).toMatch(/not allowed/);
    expect(refused('a[b][c][d][e][f]=1')[1]).toMatch(/nests deeper than 4 levels/);
    expect(refused('a]=1')[1]).toMatch(/is not name or name\[key\]/);
    expect(refused('a[]x=1')[1]).toMatch(/is not name or name\[key\]/);
    expect(refused('a=1&a[b]=2')[1]).toMatch(/given twice|mixes/);
    expect(refused('a[b]=1&a[]=2')[1]).toMatch(/mixes a value, an object and a list/);
    expect(refused('a[][b]=1')[1]).toMatch(/only a last \[\]/);
    expect(refused(`${'k'.repeat(201)}=1`)[1]).toMatch(/1–200 characters/);
    const many = Array.from({ length: MAX_FORM_FIELDS + 1 }, (_, i) => `f${i}=1`).join('&');
    expect(refused(many)[1]).toBe(`a form body has at most ${MAX_FORM_FIELDS} fields`);
  });
});
