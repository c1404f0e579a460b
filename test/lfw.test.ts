// LFW protocol files (lib/lfw.ts): a small data set written in the LFW layout to a temporary
// folder (12 people in 2 sets, pairs.txt with 2 folds of 3 + 3, the View 1 files, the gender
// lists with CRLF, empty .jpg files), parsed and split; malformed files checked for the file name
// and line number in the error; the fold / people disjointness check; and, when
// ../shared/data/lfw is present, the real files' counts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DclError,
  describeLfwSplit,
  findLfw,
  lfwImageFile,
  lfwImagePath,
  lfwView1Split,
  lfwView2Split,
  readLfwDevPairs,
  readLfwDevPeople,
  readLfwGender,
  readLfwNames,
  readLfwPairs,
  readLfwPeople,
} from '../lib/index.js';
import type { LfwPairSet } from '../lib/index.js';

const test = suite('lfw');

// ---------------------------------------------------------------------------------------------
// Fixture

const SET0: [string, number][] = [
  ['Alice_Ames', 3],
  ['Bob_Brown', 2],
  ['Carl_Cruz', 4],
  ['Dana_Diaz', 1],
  ['Eve_Ent', 1],
  ['Fay_Fox', 2],
];
const SET1: [string, number][] = [
  ['Gus_Gray', 3],
  ['Hal_Hill', 2],
  ['Ida_Ivy', 2],
  ['Jan_Jones', 1],
  ['Kim_Kay', 1],
  ['Lou_Lee', 3],
];
const FOLD0 = [
  'Alice_Ames\t1\t2',
  'Alice_Ames\t1\t3',
  'Carl_Cruz\t2\t4',
  'Alice_Ames\t1\tBob_Brown\t2',
  'Dana_Diaz\t1\tEve_Ent\t1',
  'Fay_Fox\t2\tCarl_Cruz\t1',
];
const FOLD1 = ['Gus_Gray\t1\t3', 'Hal_Hill\t1\t2', 'Lou_Lee\t2\t3', 'Ida_Ivy\t1\tJan_Jones\t1', 'Kim_Kay\t1\tLou_Lee\t1', 'Gus_Gray\t2\tHal_Hill\t2'];

const people = (set: [string, number][]) => set.map(([n, c]) => `${n}\t${c}`);

function fixtureFiles(): Record<string, string> {
  const all = [...SET0, ...SET1].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return {
    'pairs.txt': ['2\t3', ...FOLD0, ...FOLD1].join('\n') + '\n',
    'people.txt': ['2', '6', ...people(SET0), '6', ...people(SET1)].join('\n') + '\n',
    'pairsDevTrain.txt': ['2', FOLD0[0], FOLD0[2], FOLD0[3], FOLD0[4]].join('\n') + '\n',
    'pairsDevTest.txt': ['3', ...FOLD1].join('\n') + '\n',
    'peopleDevTrain.txt': ['6', ...people(SET0)].join('\n') + '\n',
    'peopleDevTest.txt': ['6', ...people(SET1)].join('\n') + '\n',
    'lfw-names.txt': people(all).join('\n') + '\n',
    // The published gender lists have CRLF line ends; Alice_Ames_0001 is in both lists and
    // Lou_Lee_0003 in neither.
    'gender/male_names.txt': ['Alice_Ames_0001.jpg', 'Bob_Brown_0001.jpg', 'Bob_Brown_0002.jpg', 'Gus_Gray_0002.jpg', 'Gus_Gray_0001.jpg', 'Gus_Gray_0003.jpg', 'Hal_Hill_0001.jpg', 'Hal_Hill_0002.jpg', 'Carl_Cruz_0001.jpg', 'Carl_Cruz_0002.jpg', 'Carl_Cruz_0003.jpg', 'Carl_Cruz_0004.jpg', 'Kim_Kay_0001.jpg', 'Lou_Lee_0001.jpg', 'Lou_Lee_0002.jpg'].join('\r\n') + '\r\n',
    'gender/female_names.txt': ['Alice_Ames_0001.jpg', 'Alice_Ames_0002.jpg', 'Alice_Ames_0003.jpg', 'Dana_Diaz_0001.jpg', 'Eve_Ent_0001.jpg', 'Fay_Fox_0001.jpg', 'Fay_Fox_0002.jpg', 'Ida_Ivy_0001.jpg', 'Ida_Ivy_0002.jpg', 'Jan_Jones_0001.jpg'].join('\r\n'),
  };
}

const roots: string[] = [];

/** Writes the fixture (with `changes` applied: null deletes a file) and the images; returns the root. */
function makeLfw(changes: Record<string, string | null> = {}, imagesDir = 'images_deepfunneled'): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-lfw-'));
  roots.push(root);
  const files = { ...fixtureFiles(), ...changes };
  for (const [name, text] of Object.entries(files)) {
    if (text === null) continue;
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  for (const [name, count] of [...SET0, ...SET1]) {
    const dir = path.join(root, imagesDir, name);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 1; i <= count; i++) fs.writeFileSync(path.join(dir, lfwImageFile(name, i)), '');
  }
  return root;
}

test.after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

/** Asserts fn throws a DclError of `code` whose message contains every one of `parts`. */
function throwsDcl(fn: () => unknown, code: string, parts: (string | RegExp)[]): DclError {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof DclError)) throw error;
    assert.is(error.code, code, `code of: ${error.message}`);
    for (const p of parts) {
      const ok = typeof p === 'string' ? error.message.includes(p) : p.test(error.message);
      assert.ok(ok, `expected ${String(p)} in: ${error.message}`);
    }
    return error;
  }
  assert.unreachable(`expected a DclError ${code}`);
  throw new Error('unreachable');
}

function pairText(s: LfwPairSet, p: number): string {
  const base = (x: string) => path.basename(x, '.jpg');
  return `${base(s.paths[s.a[p]])} ${base(s.paths[s.b[p]])} ${s.same[p]}`;
}

// ---------------------------------------------------------------------------------------------
// Readers

test('pairs.txt (View 2): folds, same then different, line numbers', () => {
  const root = makeLfw();
  const pairs = readLfwPairs(path.join(root, 'pairs.txt'));
  assert.is(pairs.pairsPerFold, 3);
  assert.is(pairs.folds.length, 2);
  assert.equal(
    pairs.folds.map((f) => f.map((p) => p.same)),
    [
      [true, true, true, false, false, false],
      [true, true, true, false, false, false],
    ],
  );
  assert.equal(pairs.folds[0][2], { name1: 'Carl_Cruz', index1: 2, name2: 'Carl_Cruz', index2: 4, same: true, line: 4 });
  assert.equal(pairs.folds[1][5], { name1: 'Gus_Gray', index1: 2, name2: 'Hal_Hill', index2: 2, same: false, line: 13 });
});

test('CRLF, trailing whitespace and trailing blank lines read like the plain file', () => {
  const plain = readLfwPairs(path.join(makeLfw(), 'pairs.txt'));
  const messy = ['2 3 ', ...FOLD0.map((l) => l + ' \t'), ...FOLD1].join('\r\n') + '\r\n\r\n  \r\n';
  const crlf = readLfwPairs(path.join(makeLfw({ 'pairs.txt': messy }), 'pairs.txt'));
  assert.equal(crlf.folds, plain.folds);
  const root = makeLfw({ 'people.txt': '\ufeff' + ['2', '6', ...people(SET0), '6', ...people(SET1)].join('\r\n') });
  assert.equal(
    readLfwPeople(path.join(root, 'people.txt')).sets.map((s) => s.map((p) => [p.name, p.images])),
    [SET0, SET1],
  );
});

test('people files, View 1 files and lfw-names', () => {
  const root = makeLfw();
  const sets = readLfwPeople(path.join(root, 'people.txt')).sets;
  assert.equal(sets[1][0], { name: 'Gus_Gray', images: 3, line: 10 });
  assert.is(readLfwDevPeople(path.join(root, 'peopleDevTest.txt')).people.length, 6);
  const dev = readLfwDevPairs(path.join(root, 'pairsDevTrain.txt'));
  assert.is(dev.count, 2);
  assert.equal(dev.pairs.map((p) => p.same), [true, true, false, false]);
  const names = readLfwNames(path.join(root, 'lfw-names.txt')).people;
  assert.is(names.length, 12);
  assert.is(names.reduce((a, p) => a + p.images, 0), 25);
});

test('gender lists: CRLF, images in both lists and in neither are returned apart', () => {
  const root = makeLfw();
  const names = readLfwNames(path.join(root, 'lfw-names.txt')).people;
  const g = readLfwGender(path.join(root, 'gender/male_names.txt'), path.join(root, 'gender/female_names.txt'), { people: names });
  assert.is(g.male, 15);
  assert.is(g.female, 10);
  assert.equal(g.both, ['Alice_Ames_0001.jpg']);
  assert.equal(g.neither, ['Lou_Lee_0003.jpg']);
  assert.is(g.labels.size, 23);
  assert.is(g.labels.get('Bob_Brown_0002.jpg'), 'male');
  assert.is(g.labels.get('Jan_Jones_0001.jpg'), 'female');
  assert.is(g.labels.has('Alice_Ames_0001.jpg'), false);
  // Without the people the lists cannot say which images they miss.
  assert.equal(readLfwGender(path.join(root, 'gender/male_names.txt'), path.join(root, 'gender/female_names.txt')).neither, []);
});

// ---------------------------------------------------------------------------------------------
// Malformed files: the error names the file, the line and what was expected

test('pairs.txt: wrong header counts', () => {
  const body = [...FOLD0, ...FOLD1];
  // 4 same pairs per fold announced: line 5 is a different-person pair.
  let root = makeLfw({ 'pairs.txt': ['2\t4', ...body].join('\n') });
  throwsDcl(() => readLfwPairs(path.join(root, 'pairs.txt')), 'E_FORMAT', [
    path.join(root, 'pairs.txt') + ' line 5',
    "same-person pair 'name i j'",
    "header '2 4'",
    '4 fields',
  ]);
  // 3 folds announced: the file ends after line 13.
  root = makeLfw({ 'pairs.txt': ['3\t3', ...body].join('\n') + '\n\n' });
  throwsDcl(() => readLfwPairs(path.join(root, 'pairs.txt')), 'E_FORMAT', ['pairs.txt line 14', 'fold 2', 'the file ends after line 13']);
  // 1 fold announced: line 8 should be the end.
  root = makeLfw({ 'pairs.txt': ['1\t3', ...body].join('\n') });
  throwsDcl(() => readLfwPairs(path.join(root, 'pairs.txt')), 'E_FORMAT', ['pairs.txt line 8', 'the end of the file', 'Gus_Gray']);
  root = makeLfw({ 'pairs.txt': ['ten\t3', ...body].join('\n') });
  throwsDcl(() => readLfwPairs(path.join(root, 'pairs.txt')), 'E_FORMAT', ['pairs.txt line 1', "header 'folds pairsPerFold'", '"ten"']);
  root = makeLfw({ 'pairs.txt': ['2', ...body].join('\n') });
  throwsDcl(() => readLfwPairs(path.join(root, 'pairs.txt')), 'E_FORMAT', ['pairs.txt line 1', '1 field']);
});

test('pairs.txt: bad integer, image 0, missing field, empty line, name with a slash', () => {
  const cases: [number, string, string[]][] = [
    [2, 'Alice_Ames\t1\tx', ['"x"', 'image numbers from 1']],
    [3, 'Alice_Ames\t0\t3', ['"0"', 'image numbers from 1']],
    [4, 'Carl_Cruz\t2', ['2 fields', "same-person pair 'name i j'", 'fold 0']],
    [6, 'Dana_Diaz\t1\tEve_Ent\t-1', ['"-1"']],
    [7, '', ['an empty line', "different-person pair 'name1 i name2 j'"]],
    [9, '../etc\t1\t2', ['the name "../etc"']],
  ];
  for (const [line, text, parts] of cases) {
    const lines = ['2\t3', ...FOLD0, ...FOLD1];
    lines[line - 1] = text;
    const root = makeLfw({ 'pairs.txt': lines.join('\n') });
    throwsDcl(() => readLfwPairs(path.join(root, 'pairs.txt')), 'E_FORMAT', [`${path.join(root, 'pairs.txt')} line ${line} `, ...parts]);
  }
});

test('people.txt and View 1 files: counts, fields, duplicates', () => {
  // Set 0 announces 7 people: its 7th would be line 9, set 1's count.
  let root = makeLfw({ 'people.txt': ['2', '7', ...people(SET0), '6', ...people(SET1)].join('\n') });
  throwsDcl(() => readLfwPeople(path.join(root, 'people.txt')), 'E_FORMAT', ['people.txt line 9', 'set 0, person 7 of 7', '1 field in "6"']);
  // Set 0 announces 5: its 6th person, line 8, is read as set 1's count.
  root = makeLfw({ 'people.txt': ['2', '5', ...people(SET0), '6', ...people(SET1)].join('\n') });
  throwsDcl(() => readLfwPeople(path.join(root, 'people.txt')), 'E_FORMAT', ['people.txt line 8', 'people count of set 1', '2 fields']);
  root = makeLfw({ 'people.txt': ['2', '6', ...people(SET0), '6', ...people(SET1).slice(0, 5), 'Lou_Lee\tthree'].join('\n') });
  throwsDcl(() => readLfwPeople(path.join(root, 'people.txt')), 'E_FORMAT', ['people.txt line 15', 'n_images >= 1', '"three"']);
  // A person in two sets: the sets must be disjoint.
  root = makeLfw({ 'people.txt': ['2', '6', ...people(SET0), '7', ...people(SET1), 'Bob_Brown\t2'].join('\n') });
  throwsDcl(() => readLfwPeople(path.join(root, 'people.txt')), 'E_FORMAT', ['people.txt line 16', 'disjoint', 'Bob_Brown', 'first at line 4', 'set 0', 'set 1']);
  root = makeLfw({ 'peopleDevTest.txt': ['7', ...people(SET1)].join('\n') });
  throwsDcl(() => readLfwDevPeople(path.join(root, 'peopleDevTest.txt')), 'E_FORMAT', ['peopleDevTest.txt line 8', 'person 7 of 7', 'file ends']);
  root = makeLfw({ 'pairsDevTest.txt': ['2', ...FOLD1].join('\n') });
  throwsDcl(() => readLfwDevPairs(path.join(root, 'pairsDevTest.txt')), 'E_FORMAT', ['pairsDevTest.txt line 4', "header '2'", '3 fields']);
  root = makeLfw({ 'gender/male_names.txt': 'Alice_Ames_0001.jpg\r\nAlice.jpg\r\n' });
  throwsDcl(
    () => readLfwGender(path.join(root, 'gender/male_names.txt'), path.join(root, 'gender/female_names.txt')),
    'E_FORMAT',
    ['male_names.txt line 2', "'Name_NNNN.jpg'", '"Alice.jpg"'],
  );
});

test('a missing file is E_IO naming it', () => {
  const root = makeLfw();
  throwsDcl(() => readLfwPairs(path.join(root, 'nope.txt')), 'E_IO', [path.join(root, 'nope.txt')]);
  throwsDcl(() => readLfwPeople(''), 'E_ARG', ['file path']);
});

// ---------------------------------------------------------------------------------------------
// Locating the data set

test('findLfw: files, image folder found or named, clear errors', () => {
  const root = makeLfw();
  const l = findLfw(root);
  assert.is(l.imagesDir, 'images_deepfunneled');
  assert.is(l.images, path.join(root, 'images_deepfunneled'));
  assert.is(l.pairs, path.join(root, 'pairs.txt'));
  assert.is(l.maleNames, path.join(root, 'gender', 'male_names.txt'));
  assert.is(l.names, path.join(root, 'lfw-names.txt'));
  // Nested as some archives unpack, and named explicitly.
  const nested = makeLfw({}, path.join('lfw-deepfunneled', 'lfw-deepfunneled'));
  assert.is(findLfw(nested).imagesDir, path.join('lfw-deepfunneled', 'lfw-deepfunneled'));
  const custom = makeLfw({ 'pairsDevTrain.txt': null }, 'faces');
  throwsDcl(() => findLfw(custom), 'E_IO', ['Could not find an LFW image folder', 'images_deepfunneled', 'options.images']);
  const named = findLfw(custom, { images: 'faces' });
  assert.is(named.images, path.join(custom, 'faces'));
  assert.is(named.pairsDevTrain, null);
  fs.mkdirSync(path.join(custom, 'empty'));
  throwsDcl(() => findLfw(custom, { images: 'empty' }), 'E_FORMAT', ['per-person sub-folders', path.join(custom, 'empty')]);
  throwsDcl(() => findLfw(custom, { images: 'absent' }), 'E_IO', [path.join(custom, 'absent')]);
  throwsDcl(() => findLfw(path.join(root, 'no-such-folder')), 'E_IO', ['no-such-folder']);
  throwsDcl(() => findLfw(makeLfw({ 'people.txt': null })), 'E_IO', ['people.txt']);
  throwsDcl(() => findLfw(root, { image: 'x' } as never), 'E_ARG', ["option 'image'"]);
});

test('image paths: <root>/<imagesDir>/<Name>/<Name>_NNNN.jpg', () => {
  assert.is(lfwImageFile('Zico', 3), 'Zico_0003.jpg');
  assert.is(lfwImageFile('George_W_Bush', 530), 'George_W_Bush_0530.jpg');
  assert.is(lfwImagePath('/data/lfw', 'images_deepfunneled', 'Zico', 12), path.join('/data/lfw', 'images_deepfunneled', 'Zico', 'Zico_0012.jpg'));
  throwsDcl(() => lfwImageFile('Zico', 0), 'E_ARG', ['image number from 1']);
  throwsDcl(() => lfwImageFile('a/b', 1), 'E_ARG', ['person name']);
});

// ---------------------------------------------------------------------------------------------
// Protocol splits

test('View 2 fold 0: train on set 1, threshold on fold 1, test on fold 0 (deduplicated images)', () => {
  const root = makeLfw();
  const split = lfwView2Split(findLfw(root), 0, { checkImages: true });
  assert.is(split.view, 2);
  assert.is(split.fold, 0);
  assert.equal(split.train.people, SET1.map(([n]) => n));
  assert.is(split.train.paths.length, 12);
  assert.is(split.train.singles, 2);
  assert.equal(Array.from(split.train.labels), [0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 5]);
  assert.is(split.train.paths[5], path.join(root, 'images_deepfunneled', 'Ida_Ivy', 'Ida_Ivy_0001.jpg'));
  const t = split.test;
  assert.equal(
    Array.from({ length: t.a.length }, (_, p) => pairText(t, p)),
    [
      'Alice_Ames_0001 Alice_Ames_0002 1',
      'Alice_Ames_0001 Alice_Ames_0003 1',
      'Carl_Cruz_0002 Carl_Cruz_0004 1',
      'Alice_Ames_0001 Bob_Brown_0002 0',
      'Dana_Diaz_0001 Eve_Ent_0001 0',
      'Fay_Fox_0002 Carl_Cruz_0001 0',
    ],
  );
  // Alice_Ames_0001 is in three pairs but listed once.
  assert.is(t.paths.length, 10);
  assert.is(new Set(t.paths).size, 10);
  assert.equal(t.people, ['Alice_Ames', 'Carl_Cruz', 'Bob_Brown', 'Dana_Diaz', 'Eve_Ent', 'Fay_Fox']);
  for (let i = 0; i < t.paths.length; i++) assert.ok(path.basename(t.paths[i]).startsWith(t.people[t.labels[i]] + '_'));
  assert.equal(Array.from(t.folds), [0, 0, 0, 0, 0, 0]);
  const th = split.thresholdPairs!;
  assert.is(th.a.length, 6);
  assert.equal(Array.from(th.folds), [1, 1, 1, 1, 1, 1]);
  assert.is(pairText(th, 4), 'Kim_Kay_0001 Lou_Lee_0001 0');
  // Train and test identities are disjoint.
  assert.ok(t.people.every((p) => !split.train.people.includes(p)));
  assert.match(describeLfwSplit(split), 'LFW View 2 fold 0: train 6 people (2 with one image), 12 images');
  // Fold 1 mirrors it; a root path works in place of findLfw's result.
  const other = lfwView2Split(root, 1);
  assert.equal(other.train.people, SET0.map(([n]) => n));
  assert.is(other.test.a.length, 6);
  throwsDcl(() => lfwView2Split(root, 2), 'E_ARG', ['a fold number from 0 to 1']);
  throwsDcl(() => lfwView2Split(root, 0, { checkImage: true } as never), 'E_ARG', ["option 'checkImage'"]);
});

test('View 1: train on peopleDevTrain, threshold on pairsDevTrain, test on pairsDevTest', () => {
  const root = makeLfw();
  const split = lfwView1Split(root, { checkImages: true });
  assert.is(split.view, 1);
  assert.is(split.fold, null);
  assert.equal(split.train.people, SET0.map(([n]) => n));
  assert.is(split.train.paths.length, 13);
  assert.is(split.thresholdPairs!.a.length, 4);
  assert.is(split.test.a.length, 6);
  assert.equal(Array.from(split.test.same), [1, 1, 1, 0, 0, 0]);
  const noDevTrain = makeLfw({ 'pairsDevTrain.txt': null });
  assert.is(lfwView1Split(noDevTrain).thresholdPairs, null);
  throwsDcl(() => lfwView1Split(makeLfw({ 'peopleDevTest.txt': null })), 'E_IO', ['peopleDevTest.txt']);
});

test('splits check people and image numbers against the people files', () => {
  // An unknown person in fold 0.
  let lines = ['2\t3', ...FOLD0, ...FOLD1];
  lines[2] = 'Zed_Zero\t1\t2';
  let root = makeLfw({ 'pairs.txt': lines.join('\n') });
  throwsDcl(() => lfwView2Split(root, 0), 'E_FORMAT', ['pairs.txt line 3', 'unknown person', 'Zed_Zero', 'people.txt']);
  // ... also when fold 0 only provides the threshold pairs.
  throwsDcl(() => lfwView2Split(root, 1), 'E_FORMAT', ['pairs.txt line 3', 'Zed_Zero']);
  // An image number beyond the person's count.
  lines = ['2\t3', ...FOLD0, ...FOLD1];
  lines[4] = 'Fay_Fox\t1\tBob_Brown\t3';
  root = makeLfw({ 'pairs.txt': lines.join('\n') });
  throwsDcl(() => lfwView2Split(root, 0), 'E_FORMAT', ['pairs.txt line 5', 'image number from 1 to 2 for Bob_Brown', 'people.txt line 4']);
  // View 1: a pairsDevTest person that peopleDevTest does not list.
  root = makeLfw({ 'pairsDevTest.txt': ['3', ...FOLD1.slice(0, 5), 'Gus_Gray\t2\tNoah_Nobody\t1'].join('\n') });
  throwsDcl(() => lfwView1Split(root), 'E_FORMAT', ['pairsDevTest.txt line 7', 'Noah_Nobody', 'peopleDevTest.txt']);
  // A missing image with checkImages.
  root = makeLfw();
  fs.rmSync(path.join(root, 'images_deepfunneled', 'Carl_Cruz', 'Carl_Cruz_0004.jpg'));
  assert.is(lfwView2Split(root, 0).test.a.length, 6);
  throwsDcl(() => lfwView2Split(root, 0, { checkImages: true }), 'E_IO', ['1 LFW image', 'Carl_Cruz_0004.jpg']);
});

test('fold / people disjointness: a fold naming a training person is refused', () => {
  // Alice_Ames moves to set 1, but fold 0's pairs still use her: for fold 0 she would be both a
  // training person and a test person.
  const set0 = SET0.filter(([n]) => n !== 'Alice_Ames');
  const set1 = [...SET1, SET0[0]];
  const root = makeLfw({ 'people.txt': ['2', '5', ...people(set0), '7', ...people(set1)].join('\n') });
  throwsDcl(() => lfwView2Split(root, 0), 'E_FORMAT', ['share no person', 'pairs.txt', 'Alice_Ames (pairs.txt line 2, people.txt line 15)', '1 person is in both']);
  // Fold 1's test pairs do not name her: that split is valid.
  assert.is(lfwView2Split(root, 1).test.a.length, 6);
  // View 1: a pairsDevTest person listed in peopleDevTrain.
  const dev = makeLfw({ 'peopleDevTrain.txt': ['7', ...people(SET0), 'Kim_Kay\t1'].join('\n') });
  throwsDcl(() => lfwView1Split(dev), 'E_FORMAT', ['share no person', 'Kim_Kay', 'peopleDevTrain.txt line 8']);
});

// ---------------------------------------------------------------------------------------------
// The real files, when present

const REAL = path.resolve('..', 'shared', 'data', 'lfw');

test('real LFW protocol files (../shared/data/lfw) when present', () => {
  if (!fs.existsSync(path.join(REAL, 'pairs.txt'))) {
    console.log(`  (skipped: no LFW files at ${REAL})`);
    return;
  }
  const l = findLfw(REAL);
  const pairs = readLfwPairs(l.pairs);
  assert.is(pairs.folds.length, 10);
  assert.is(pairs.pairsPerFold, 300);
  assert.ok(pairs.folds.every((f) => f.length === 600 && f.filter((p) => p.same).length === 300));
  const sets = readLfwPeople(l.people).sets;
  assert.is(sets.length, 10);
  const setOf = new Map<string, number>();
  sets.forEach((s, k) => s.forEach((p) => setOf.set(p.name, k)));
  assert.is(setOf.size, 5749, 'the 10 people sets are disjoint and cover 5,749 people');
  pairs.folds.forEach((fold, k) => {
    for (const p of fold) assert.ok(setOf.get(p.name1) === k && setOf.get(p.name2) === k, `fold ${k} pair at line ${p.line} uses set ${k}'s people`);
  });
  const names = readLfwNames(l.names!).people;
  assert.is(names.length, 5749);
  assert.is(names.reduce((a, p) => a + p.images, 0), 13233);
  assert.is(readLfwDevPairs(l.pairsDevTrain!).count, 1100);
  assert.is(readLfwDevPairs(l.pairsDevTest!).count, 500);
  assert.is(readLfwDevPeople(l.peopleDevTrain!).people.length, 4038);
  assert.is(readLfwDevPeople(l.peopleDevTest!).people.length, 1711);
  const g = readLfwGender(l.maleNames!, l.femaleNames!, { people: names });
  assert.is(g.male, 10268);
  assert.is(g.female, 2966);
  assert.is(g.both.length, 5);
  assert.equal(g.neither, ['Robert_Evans_0001.jpg', 'Robert_Evans_0002.jpg', 'Tara_Kirk_0001.jpg', 'Yasser_Arafat_0005.jpg']);
  for (let k = 0; k < 10; k++) {
    const split = lfwView2Split(l, k);
    assert.is(split.test.a.length, 600);
    assert.is(split.thresholdPairs!.a.length, 5400);
    assert.is(split.train.people.length + sets[k].length, 5749);
  }
  const v1 = lfwView1Split(l);
  assert.is(v1.train.people.length, 4038);
  assert.is(v1.test.a.length, 1000);
  console.log(`  ${describeLfwSplit(lfwView2Split(l, 0))}\n  ${describeLfwSplit(v1)}`);
});

test.run();
