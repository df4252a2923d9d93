/** Each VINR limit broken in turn: the path and the code say which. */
export const BROKEN_LIMITS: [string, unknown, string][] = [
  ['more than 4 tip suggestions', { tip: { suggestions: [1, 2, 3, 4, 5] } }, '/tip/suggestions'],
  ['an unknown tip mode', { tip: { mode: 'generous' } }, '/tip/mode'],
  [
    'an idle message over 60 characters',
    { display: { idleMessage: 'x'.repeat(61) } },
    '/display/idleMessage',
  ],
  [
    'a receipt channel outside print|email|sms',
    { receipt: { channels: ['print', 'fax'] } },
    '/receipt/channels/1',
  ],
  ['a negative offline maxAmount', { offlineMode: { maxAmount: -1 } }, '/offlineMode/maxAmount'],
  ['a non-integer maxQueue', { offlineMode: { maxQueue: 2.5 } }, '/offlineMode/maxQueue'],
  ['maxAgeHours over the 72 h cap', { offlineMode: { maxAgeHours: 73 } }, '/offlineMode/maxAgeHours'],
  [
    'a maxTotal currency that is not ISO 4217',
    { offlineMode: { maxTotal: { euro: 5 } } },
    '/offlineMode/maxTotal',
  ],
  ['an unknown top-level key', { tipp: { mode: 'fixed' } }, '/tipp'],
];
