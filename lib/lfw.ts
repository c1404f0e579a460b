// Labeled Faces in the Wild: readers for the official protocol files and the two evaluation
// protocols built on them.
//
// Files (all tab- or space-separated, one record a line; CRLF, trailing whitespace and trailing
// blank lines are tolerated because copies of LFW circulate with all of them):
// - pairs.txt (View 2): header `folds pairsPerFold` (`10 300`), then per fold pairsPerFold
//   same-person lines `name i j` followed by pairsPerFold different-person lines `name1 i name2 j`;
// - pairsDevTrain.txt / pairsDevTest.txt (View 1): header `count`, then count same-person lines
//   and count different-person lines;
// - people.txt (View 2): header `sets`, then per set a line `count` and count lines `name n_images`;
// - peopleDevTrain.txt / peopleDevTest.txt (View 1) : header `count`, then count lines `name n`;
// - lfw-names.txt: `name n_images` lines, no header;
// - gender/male_names.txt, gender/female_names.txt: one image file name a line (`Name_0001.jpg`).
//
// A malformed line is a DclError E_FORMAT naming the file, the line number and what was expected;
// a file that cannot be read is E_IO. Image indices (i, j, n_images) count from 1, as the files
// do; fold numbers count from 0, as arrays do.
import fs from 'node:fs';
import path from 'node:path';
import { DclError } from './errors.js';
import { readFileChecked } from './files.js';
import { fail, knownKeys, nonNegativeInteger, plainObject } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Types

/** One line of a pairs file. Same-person pairs have name1 === name2. */
export interface LfwPair {
  readonly name1: string;
  /** Image number of name1, from 1. */
  readonly index1: number;
  readonly name2: string;
  readonly index2: number;
  readonly same: boolean;
  /** Line number in the file (from 1), for error messages further on. */
  readonly line: number;
}

/** pairs.txt: folds[f] holds fold f's same-person pairs, then its different-person pairs. */
export interface LfwPairsView2 {
  readonly file: string;
  readonly pairsPerFold: number;
  readonly folds: readonly (readonly LfwPair[])[];
}

/** pairsDevTrain.txt / pairsDevTest.txt: `count` same-person pairs, then `count` different-person pairs. */
export interface LfwPairsView1 {
  readonly file: string;
  readonly count: number;
  readonly pairs: readonly LfwPair[];
}

export interface LfwPerson {
  readonly name: string;
  /** Number of images, from 1. */
  readonly images: number;
  readonly line: number;
}

/** people.txt: disjoint sets of people (10 in the official file), one per View 2 fold. */
export interface LfwPeopleView2 {
  readonly file: string;
  readonly sets: readonly (readonly LfwPerson[])[];
}

/** peopleDevTrain.txt, peopleDevTest.txt, or lfw-names.txt. */
export interface LfwPeopleList {
  readonly file: string;
  readonly people: readonly LfwPerson[];
}

export type LfwGenderLabel = 'male' | 'female';

export interface LfwGender {
  /** Image file name (`Name_0001.jpg`) -> label, for the images in exactly one list. */
  readonly labels: ReadonlyMap<string, LfwGenderLabel>;
  /** Images in both lists: unlabelled (sorted). */
  readonly both: readonly string[];
  /**
   * Images of `options.people` in neither list: unlabelled (sorted). Empty when no people were
   * given, since the lists alone cannot say which images they miss.
   */
  readonly neither: readonly string[];
  readonly male: number;
  readonly female: number;
}

/** Where findLfw found the data set; every path absolute. Optional files are null when absent. */
export interface LfwLocation {
  readonly root: string;
  /** The image folder (one sub-folder per person). */
  readonly images: string;
  /** The image folder relative to root, as named or found (e.g. 'images_deepfunneled'). */
  readonly imagesDir: string;
  readonly pairs: string;
  readonly people: string;
  readonly pairsDevTrain: string | null;
  readonly pairsDevTest: string | null;
  readonly peopleDevTrain: string | null;
  readonly peopleDevTest: string | null;
  readonly names: string | null;
  readonly maleNames: string | null;
  readonly femaleNames: string | null;
}

/** Images with identity labels: labels[i] indexes people. */
export interface LfwImageSet {
  readonly paths: string[];
  readonly labels: Int32Array;
  /** Person name of each label. */
  readonly people: string[];
}

export interface LfwTrainSet extends LfwImageSet {
  /** People with one image: they give no same-person pair but serve as negatives. */
  readonly singles: number;
}

/**
 * Pairs over a deduplicated image list: pair p compares paths[a[p]] with paths[b[p]]; same[p] is
 * 1 for a same-person pair. Pairs keep the file's order (per fold: same, then different).
 */
export interface LfwPairSet extends LfwImageSet {
  readonly a: Int32Array;
  readonly b: Int32Array;
  readonly same: Uint8Array;
  /** For View 2 threshold pairs: the fold each pair comes from; otherwise all equal to the split's fold (or 0). */
  readonly folds: Int32Array;
}

/** The pairs of a pair set whose two images both loaded (LfwPairSet's pair numbers and indices into the loaded files). */
export interface LoadedPairs {
  /** Indices into the loaded files. */
  readonly a: Int32Array;
  readonly b: Int32Array;
  readonly same: Uint8Array;
  /** Each kept pair's number in the set. */
  readonly pairs: Int32Array;
}

/**
 * The pairs of `set` whose two images are both among `files` (the images that loaded; paths
 * compared resolved), re-indexed into `files`.
 */
export function loadedPairs(set: LfwPairSet, files: readonly string[]): LoadedPairs {
  const where = new Map(files.map((f, i) => [path.resolve(f), i]));
  const a: number[] = [];
  const b: number[] = [];
  const same: number[] = [];
  const pairs: number[] = [];
  for (let p = 0; p < set.a.length; p++) {
    const i = where.get(path.resolve(set.paths[set.a[p]]));
    const j = where.get(path.resolve(set.paths[set.b[p]]));
    if (i === undefined || j === undefined) continue;
    a.push(i);
    b.push(j);
    same.push(set.same[p]);
    pairs.push(p);
  }
  return { a: Int32Array.from(a), b: Int32Array.from(b), same: Uint8Array.from(same), pairs: Int32Array.from(pairs) };
}

export interface LfwSplit {
  readonly view: 1 | 2;
  /** The held-out fold (View 2) or null (View 1). */
  readonly fold: number | null;
  /** Images of the training people (View 2: the other sets; View 1: peopleDevTrain). */
  readonly train: LfwTrainSet;
  /**
   * Pairs to choose a verification threshold on, disjoint in identity from the test pairs
   * (View 2: the other folds' pairs; View 1: pairsDevTrain, or null when that file is absent).
   */
  readonly thresholdPairs: LfwPairSet | null;
  /** The pairs to report accuracy on (View 2: fold k; View 1: pairsDevTest). */
  readonly test: LfwPairSet;
}

// ---------------------------------------------------------------------------------------------
// Line reading and field parsing

interface Line {
  readonly number: number;
  readonly text: string;
  readonly fields: string[];
}

function shown(text: string): string {
  return JSON.stringify(text.length > 80 ? text.slice(0, 80) + '...' : text);
}

function formatError(file: string, line: number, expected: string, found: string): DclError {
  return new DclError('E_FORMAT', `Expected ${expected} at ${file} line ${line} but found ${found}`);
}

/** A file's lines, with trailing whitespace (and so CR) removed and trailing blank lines dropped. */
class LineReader {
  readonly lines: Line[];
  private position = 0;

  constructor(readonly file: string) {
    let text = readFileChecked(file).toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark from Windows editors
    const raw = text.split(/\r\n|\n|\r/);
    while (raw.length > 0 && raw[raw.length - 1].trim() === '') raw.pop();
    this.lines = raw.map((t, i) => {
      const trimmed = t.trimEnd();
      return { number: i + 1, text: trimmed, fields: trimmed === '' ? [] : trimmed.trim().split(/\s+/) };
    });
  }

  get done(): boolean {
    return this.position >= this.lines.length;
  }

  /** The next line; at the end of the file an error saying what was expected there. */
  next(expected: string): Line {
    if (this.done) {
      const last = this.lines.length;
      throw new DclError('E_FORMAT', `Expected ${expected} at ${this.file} line ${last + 1} but the file ends after line ${last}`);
    }
    return this.lines[this.position++];
  }

  /** Checks that nothing but trailing blank lines follows. */
  end(after: string): void {
    if (this.done) return;
    const line = this.lines[this.position];
    throw formatError(this.file, line.number, `the end of the file after ${after}`, shown(line.text));
  }

  error(line: Line, expected: string, found?: string): DclError {
    return formatError(this.file, line.number, expected, found ?? (line.text === '' ? 'an empty line' : shown(line.text)));
  }
}

const COUNT_RE = /^[0-9]+$/;

/** A non-negative decimal integer field (no sign, no exponent: LFW files never have them). */
function integerField(reader: LineReader, line: Line, field: string, expected: string, min: number): number {
  const value = COUNT_RE.test(field) ? Number(field) : NaN;
  if (!Number.isSafeInteger(value) || value < min)
    throw reader.error(line, expected, `${shown(field)} in ${shown(line.text)}`);
  return value;
}

/** A person name becomes a folder name: no separators, not '.' or '..'. */
function nameField(reader: LineReader, line: Line, field: string, expected: string): string {
  if (!isPersonName(field)) throw reader.error(line, expected, `the name ${shown(field)} in ${shown(line.text)}`);
  return field;
}

function isPersonName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\\s]/.test(name);
}

function fieldCount(reader: LineReader, line: Line, count: number, expected: string, hint = ''): void {
  if (line.fields.length !== count) {
    const found = line.text === '' ? 'an empty line' : `${line.fields.length} field${line.fields.length === 1 ? '' : 's'} in ${shown(line.text)}`;
    throw reader.error(line, expected + hint, found);
  }
}

function readSamePair(reader: LineReader, what: string, hint: string): LfwPair {
  const expected = `a same-person pair 'name i j' (${what})`;
  const line = reader.next(expected);
  fieldCount(reader, line, 3, expected, line.fields.length === 4 ? hint : '');
  const name = nameField(reader, line, line.fields[0], expected);
  const index1 = integerField(reader, line, line.fields[1], `${expected} with image numbers from 1`, 1);
  const index2 = integerField(reader, line, line.fields[2], `${expected} with image numbers from 1`, 1);
  return { name1: name, index1, name2: name, index2, same: true, line: line.number };
}

function readDifferentPair(reader: LineReader, what: string, hint: string): LfwPair {
  const expected = `a different-person pair 'name1 i name2 j' (${what})`;
  const line = reader.next(expected);
  fieldCount(reader, line, 4, expected, line.fields.length === 3 ? hint : '');
  const name1 = nameField(reader, line, line.fields[0], expected);
  const index1 = integerField(reader, line, line.fields[1], `${expected} with image numbers from 1`, 1);
  const name2 = nameField(reader, line, line.fields[2], expected);
  const index2 = integerField(reader, line, line.fields[3], `${expected} with image numbers from 1`, 1);
  return { name1, index1, name2, index2, same: false, line: line.number };
}

function readPersonLine(reader: LineReader, what: string): LfwPerson {
  const expected = `a person line 'name n_images' (${what})`;
  const line = reader.next(expected);
  fieldCount(reader, line, 2, expected);
  const name = nameField(reader, line, line.fields[0], expected);
  const images = integerField(reader, line, line.fields[1], `${expected} with n_images >= 1`, 1);
  return { name, images, line: line.number };
}

function filePath(file: unknown, name: string): string {
  if (typeof file !== 'string' || file.length === 0) fail('E_ARG', 'a file path', name, file);
  return file;
}

/** Rejects a person listed twice: names are identities, and the sets must be disjoint. */
function checkUnique(file: string, people: readonly LfwPerson[], where: (p: LfwPerson) => string): void {
  const seen = new Map<string, LfwPerson>();
  for (const p of people) {
    const first = seen.get(p.name);
    if (first)
      throw formatError(
        file,
        p.line,
        `each person listed once (the people sets must be disjoint)`,
        `${p.name} again (${where(p)}; first at line ${first.line}, ${where(first)})`,
      );
    seen.set(p.name, p);
  }
}

// ---------------------------------------------------------------------------------------------
// Readers

/** Reads pairs.txt (View 2) and checks the counts against its header `folds pairsPerFold`. */
export function readLfwPairs(file: string): LfwPairsView2 {
  const reader = new LineReader(filePath(file, 'file'));
  const headerWhat = "a header 'folds pairsPerFold' of two positive integers (such as '10 300')";
  const header = reader.next(headerWhat);
  fieldCount(reader, header, 2, headerWhat);
  const folds = integerField(reader, header, header.fields[0], headerWhat, 1);
  const perFold = integerField(reader, header, header.fields[1], headerWhat, 1);
  const hint = `; does the header '${folds} ${perFold}' match the file?`;
  const out: LfwPair[][] = [];
  for (let f = 0; f < folds; f++) {
    const fold: LfwPair[] = [];
    for (let i = 0; i < perFold; i++) fold.push(readSamePair(reader, `fold ${f} of 0-${folds - 1}, same-person pair ${i + 1} of ${perFold}`, hint));
    for (let i = 0; i < perFold; i++)
      fold.push(readDifferentPair(reader, `fold ${f} of 0-${folds - 1}, different-person pair ${i + 1} of ${perFold}`, hint));
    out.push(fold);
  }
  reader.end(`the ${folds} folds of ${perFold} + ${perFold} pairs the header '${folds} ${perFold}' announces`);
  return { file, pairsPerFold: perFold, folds: out };
}

/** Reads pairsDevTrain.txt or pairsDevTest.txt (View 1): header `count`, count same then count different pairs. */
export function readLfwDevPairs(file: string): LfwPairsView1 {
  const reader = new LineReader(filePath(file, 'file'));
  const headerWhat = "a header 'count' of one positive integer (such as '1100')";
  const header = reader.next(headerWhat);
  fieldCount(reader, header, 1, headerWhat);
  const count = integerField(reader, header, header.fields[0], headerWhat, 1);
  const hint = `; does the header '${count}' match the file?`;
  const pairs: LfwPair[] = [];
  for (let i = 0; i < count; i++) pairs.push(readSamePair(reader, `same-person pair ${i + 1} of ${count}`, hint));
  for (let i = 0; i < count; i++) pairs.push(readDifferentPair(reader, `different-person pair ${i + 1} of ${count}`, hint));
  reader.end(`the ${count} + ${count} pairs the header '${count}' announces`);
  return { file, count, pairs };
}

/** Reads people.txt (View 2): header `sets`, then per set `count` and count `name n_images` lines. Sets must be disjoint. */
export function readLfwPeople(file: string): LfwPeopleView2 {
  const reader = new LineReader(filePath(file, 'file'));
  const headerWhat = "a header 'sets' of one positive integer (such as '10')";
  const header = reader.next(headerWhat);
  fieldCount(reader, header, 1, headerWhat);
  const setCount = integerField(reader, header, header.fields[0], headerWhat, 1);
  const sets: LfwPerson[][] = [];
  const setOf = new Map<LfwPerson, number>();
  for (let s = 0; s < setCount; s++) {
    const countWhat = `the people count of set ${s} of 0-${setCount - 1} (one integer)`;
    const countLine = reader.next(countWhat);
    fieldCount(reader, countLine, 1, countWhat);
    const count = integerField(reader, countLine, countLine.fields[0], countWhat, 0);
    const set: LfwPerson[] = [];
    for (let i = 0; i < count; i++) {
      const p = readPersonLine(reader, `set ${s}, person ${i + 1} of ${count}`);
      setOf.set(p, s);
      set.push(p);
    }
    sets.push(set);
  }
  reader.end(`the ${setCount} people sets the header announces`);
  checkUnique(file, sets.flat(), (p) => `set ${setOf.get(p)}`);
  return { file, sets };
}

/** Reads peopleDevTrain.txt or peopleDevTest.txt (View 1): header `count`, then count `name n` lines. */
export function readLfwDevPeople(file: string): LfwPeopleList {
  const reader = new LineReader(filePath(file, 'file'));
  const headerWhat = "a header 'count' of one positive integer (such as '4038')";
  const header = reader.next(headerWhat);
  fieldCount(reader, header, 1, headerWhat);
  const count = integerField(reader, header, header.fields[0], headerWhat, 1);
  const people: LfwPerson[] = [];
  for (let i = 0; i < count; i++) people.push(readPersonLine(reader, `person ${i + 1} of ${count}`));
  reader.end(`the ${count} people the header announces`);
  checkUnique(file, people, () => 'listed');
  return { file, people };
}

/** Reads lfw-names.txt: `name n_images` lines, no header (5,749 people in the official file). */
export function readLfwNames(file: string): LfwPeopleList {
  const reader = new LineReader(filePath(file, 'file'));
  const people: LfwPerson[] = [];
  while (!reader.done) people.push(readPersonLine(reader, `person ${people.length + 1}`));
  checkUnique(file, people, () => 'listed');
  return { file, people };
}

const IMAGE_FILE_RE = /^(.+)_([0-9]{4,})\.jpg$/;

function readNameList(reader: LineReader): Map<string, number> {
  const files = new Map<string, number>();
  const expected = "an image file name 'Name_NNNN.jpg'";
  while (!reader.done) {
    const line = reader.next(expected);
    fieldCount(reader, line, 1, expected);
    const m = IMAGE_FILE_RE.exec(line.fields[0]);
    if (!m || !isPersonName(m[1]) || Number(m[2]) < 1) throw reader.error(line, expected);
    // A name listed twice in one list carries one label: harmless, so not an error.
    if (!files.has(line.fields[0])) files.set(line.fields[0], line.number);
  }
  return files;
}

/**
 * Reads the gender lists (one image file name a line, CRLF in the published files). An image in
 * both lists, or (given `options.people`, e.g. readLfwNames(...).people) in neither, has no
 * usable label: those are returned in `both` / `neither` so callers can report them.
 */
export function readLfwGender(
  maleFile: string,
  femaleFile: string,
  options?: { people?: readonly { name: string; images: number }[] },
): LfwGender {
  const male = readNameList(new LineReader(filePath(maleFile, 'maleFile')));
  const female = readNameList(new LineReader(filePath(femaleFile, 'femaleFile')));
  const o = plainObject(options, 'options');
  knownKeys(o, ['people'], 'options');
  const labels = new Map<string, LfwGenderLabel>();
  const both: string[] = [];
  for (const f of male.keys()) {
    if (female.has(f)) both.push(f);
    else labels.set(f, 'male');
  }
  for (const f of female.keys()) if (!male.has(f)) labels.set(f, 'female');
  const neither: string[] = [];
  if (o.people !== undefined) {
    if (!Array.isArray(o.people)) fail('E_ARG', 'an array of { name, images }', 'options.people', o.people);
    o.people.forEach((p: unknown, i: number) => {
      const person = p as { name?: unknown; images?: unknown };
      if (p === null || typeof p !== 'object' || typeof person.name !== 'string' || !isPersonName(person.name))
        fail('E_ARG', 'a person { name, images } with a folder-safe name', `options.people[${i}]`, p);
      const count = nonNegativeInteger(person.images, `options.people[${i}].images`);
      for (let k = 1; k <= count; k++) {
        const f = lfwImageFile(person.name as string, k);
        if (!male.has(f) && !female.has(f)) neither.push(f);
      }
    });
  }
  both.sort();
  neither.sort();
  return { labels, both, neither, male: male.size, female: female.size };
}

// ---------------------------------------------------------------------------------------------
// Paths and locating the data set

/** `Name_NNNN.jpg`: the image number zero-padded to four digits, as in every LFW release. */
export function lfwImageFile(name: string, index: number): string {
  if (typeof name !== 'string' || !isPersonName(name)) fail('E_ARG', "a person name without '/', '\\' or spaces", 'name', name);
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) fail('E_ARG', 'an image number from 1', 'index', index);
  return `${name}_${String(index).padStart(4, '0')}.jpg`;
}

/** `<root>/<imagesDir>/<Name>/<Name>_<NNNN>.jpg`. */
export function lfwImagePath(root: string, imagesDir: string, name: string, index: number): string {
  const file = lfwImageFile(name, index);
  if (typeof root !== 'string') fail('E_ARG', 'a folder path', 'root', root);
  if (typeof imagesDir !== 'string') fail('E_ARG', 'a folder path', 'imagesDir', imagesDir);
  return path.join(root, imagesDir, name, file);
}

/** Folder names LFW's image sets are published under, in the order findLfw tries them. */
export const LFW_IMAGE_FOLDERS: readonly string[] = Object.freeze([
  'images_deepfunneled',
  'lfw-deepfunneled',
  'lfw_deepfunneled',
  'lfw-funneled',
  'lfw_funneled',
  'lfw',
  'images',
]);

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * True when `dir` has per-person sub-folders: the first few sub-folders (by name) each hold a
 * `<Folder>_NNNN.jpg`. A sample, not all 5,749, so that locating the set stays instant.
 */
function holdsPersonFolders(dir: string): boolean {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  const folders = entries.filter((e) => e.isDirectory() && isPersonName(e.name)).map((e) => e.name).sort().slice(0, 3);
  if (folders.length === 0) return false;
  return folders.every((name) => {
    try {
      const prefix = `${name}_`;
      return fs.readdirSync(path.join(dir, name)).some((f) => f.startsWith(prefix) && IMAGE_FILE_RE.test(f));
    } catch {
      return false;
    }
  });
}

/**
 * Locates LFW under `root`: pairs.txt and people.txt (required), the View 1 files, lfw-names.txt
 * and the gender lists (root or root/gender; null when absent), and the image folder: the one
 * named by `options.images` (relative to root, or absolute), else the first of LFW_IMAGE_FOLDERS
 * that holds per-person sub-folders (also one level down, e.g. lfw-deepfunneled/lfw-deepfunneled
 * as some archives unpack). A missing root, protocol file or image folder is E_IO; a named folder
 * without per-person sub-folders is E_FORMAT.
 */
export function findLfw(root: string, options?: { images?: string }): LfwLocation {
  if (typeof root !== 'string' || root.length === 0) fail('E_ARG', 'the LFW folder path', 'root', root);
  const o = plainObject(options, 'options');
  knownKeys(o, ['images'], 'options');
  const base = path.resolve(root);
  if (!isDirectory(base)) throw new DclError('E_IO', `Could not find the LFW folder ${base}: no such folder`);
  const required = (name: string, what: string): string => {
    const p = path.join(base, name);
    if (!isFile(p)) throw new DclError('E_IO', `Could not find ${name} (${what}) in the LFW folder ${base}`);
    return p;
  };
  const optional = (...names: string[]): string | null => {
    for (const n of names) if (isFile(path.join(base, n))) return path.join(base, n);
    return null;
  };
  const pairs = required('pairs.txt', 'the View 2 pairs');
  const people = required('people.txt', 'the View 2 people sets');

  let imagesDir: string;
  if (o.images !== undefined) {
    if (typeof o.images !== 'string' || o.images.length === 0) fail('E_ARG', 'a folder path', 'options.images', o.images);
    const dir = path.resolve(base, o.images);
    if (!isDirectory(dir)) throw new DclError('E_IO', `Could not find the image folder ${dir} (options.images) in the LFW folder ${base}`);
    if (!holdsPersonFolders(dir))
      throw new DclError(
        'E_FORMAT',
        `Expected per-person sub-folders holding <Name>/<Name>_NNNN.jpg in options.images but ${dir} has none`,
      );
    imagesDir = path.relative(base, dir) || '.';
  } else {
    const found = LFW_IMAGE_FOLDERS.flatMap((n) => [n, path.join(n, n)]).find((n) => holdsPersonFolders(path.join(base, n)));
    if (found === undefined)
      throw new DclError(
        'E_IO',
        `Could not find an LFW image folder in ${base}: none of ${LFW_IMAGE_FOLDERS.join(', ')} holds per-person ` +
          `sub-folders <Name>/<Name>_NNNN.jpg; name it with options.images`,
      );
    imagesDir = found;
  }
  return {
    root: base,
    images: path.resolve(base, imagesDir),
    imagesDir,
    pairs,
    people,
    pairsDevTrain: optional('pairsDevTrain.txt'),
    pairsDevTest: optional('pairsDevTest.txt'),
    peopleDevTrain: optional('peopleDevTrain.txt'),
    peopleDevTest: optional('peopleDevTest.txt'),
    names: optional('lfw-names.txt'),
    maleNames: optional(path.join('gender', 'male_names.txt'), 'male_names.txt'),
    femaleNames: optional(path.join('gender', 'female_names.txt'), 'female_names.txt'),
  };
}

// ---------------------------------------------------------------------------------------------
// Protocols

function location(lfw: unknown): LfwLocation {
  if (typeof lfw === 'string') return findLfw(lfw);
  const l = lfw as Partial<LfwLocation> | null;
  if (l === null || typeof l !== 'object' || typeof l.images !== 'string' || typeof l.pairs !== 'string' || typeof l.people !== 'string')
    fail('E_ARG', 'an LFW folder path or the result of findLfw()', 'lfw', lfw);
  return l as LfwLocation;
}

function splitOptions(options: unknown): { checkImages: boolean } {
  const o = plainObject(options, 'options');
  knownKeys(o, ['checkImages'], 'options');
  if (o.checkImages !== undefined && typeof o.checkImages !== 'boolean') fail('E_ARG', 'a boolean', 'options.checkImages', o.checkImages);
  return { checkImages: o.checkImages === true };
}

/** Training images: every image of every person, people in list order, labels = position. */
function trainSet(lfw: LfwLocation, people: readonly LfwPerson[]): LfwTrainSet {
  const paths: string[] = [];
  const labels: number[] = [];
  let singles = 0;
  people.forEach((p, label) => {
    if (p.images === 1) singles++;
    for (let i = 1; i <= p.images; i++) {
      paths.push(path.join(lfw.images, p.name, lfwImageFile(p.name, i)));
      labels.push(label);
    }
  });
  return { paths, labels: Int32Array.from(labels), people: people.map((p) => p.name), singles };
}

/**
 * Pairs as indices into a deduplicated image list (an image in several pairs is encoded once).
 * Every person must be known (`known`: name -> person, with its image count) so that a typo or
 * a foreign pairs file fails here, at its line, rather than as a missing image later.
 */
function pairSet(
  lfw: LfwLocation,
  file: string,
  groups: readonly { fold: number; pairs: readonly LfwPair[] }[],
  known: ReadonlyMap<string, LfwPerson>,
  peopleFile: string,
): LfwPairSet {
  const paths: string[] = [];
  const labels: number[] = [];
  const people: string[] = [];
  const personIndex = new Map<string, number>();
  const imageIndex = new Map<string, number>();
  const a: number[] = [];
  const b: number[] = [];
  const same: number[] = [];
  const folds: number[] = [];
  const image = (pair: LfwPair, name: string, index: number): number => {
    const person = known.get(name);
    if (!person) throw formatError(file, pair.line, `a person listed in ${peopleFile}`, `${shown(name)}, an unknown person`);
    if (index > person.images)
      throw formatError(
        file,
        pair.line,
        `an image number from 1 to ${person.images} for ${name} (${peopleFile} line ${person.line})`,
        String(index),
      );
    const key = `${name}\t${index}`;
    let at = imageIndex.get(key);
    if (at === undefined) {
      let label = personIndex.get(name);
      if (label === undefined) {
        label = people.length;
        personIndex.set(name, label);
        people.push(name);
      }
      at = paths.length;
      imageIndex.set(key, at);
      paths.push(path.join(lfw.images, name, lfwImageFile(name, index)));
      labels.push(label);
    }
    return at;
  };
  for (const g of groups) {
    for (const p of g.pairs) {
      a.push(image(p, p.name1, p.index1));
      b.push(image(p, p.name2, p.index2));
      same.push(p.same ? 1 : 0);
      folds.push(g.fold);
    }
  }
  return {
    paths,
    labels: Int32Array.from(labels),
    people,
    a: Int32Array.from(a),
    b: Int32Array.from(b),
    same: Uint8Array.from(same),
    folds: Int32Array.from(folds),
  };
}

/**
 * The protocol's promise, checked rather than assumed: no person of a test pair is a training
 * person. A violation names the first few people and the lines they appear on.
 */
function checkDisjoint(file: string, testPairs: readonly LfwPair[], train: ReadonlyMap<string, LfwPerson>, trainFile: string, what: string): void {
  const overlap = new Map<string, number>();
  for (const p of testPairs) {
    for (const name of [p.name1, p.name2]) if (train.has(name) && !overlap.has(name)) overlap.set(name, p.line);
  }
  if (overlap.size === 0) return;
  const listed = [...overlap].slice(0, 5).map(([name, line]) => `${name} (${path.basename(file)} line ${line}, ${path.basename(trainFile)} line ${train.get(name)!.line})`);
  throw new DclError(
    'E_FORMAT',
    `Expected the test pairs of ${file} to share no person with the training people of ${trainFile} (${what}) but ` +
      `${overlap.size} ${overlap.size === 1 ? 'person is' : 'people are'} in both: ${listed.join(', ')}${overlap.size > 5 ? ', ...' : ''}`,
  );
}

function byName(people: readonly LfwPerson[]): Map<string, LfwPerson> {
  return new Map(people.map((p) => [p.name, p]));
}

function checkImagesExist(sets: readonly LfwImageSet[]): void {
  const missing: string[] = [];
  let count = 0;
  for (const s of sets) {
    for (const p of s.paths) {
      if (!isFile(p)) {
        count++;
        if (missing.length < 5) missing.push(p);
      }
    }
  }
  if (count > 0) throw new DclError('E_IO', `Could not find ${count} LFW image${count === 1 ? '' : 's'}: ${missing.join(', ')}${count > 5 ? ', ...' : ''}`);
}

/**
 * View 2, fold k (0-9 in the official files), unrestricted protocol: train on the people of the
 * other sets of people.txt; choose the threshold on the other folds' pairs; test on fold k's pairs.
 * Throws E_FORMAT when fold k's pairs name a training person (the sets would not be disjoint from
 * the fold), an unknown person, or an image number beyond a person's count; with
 * `checkImages: true`, E_IO when an image file is missing.
 */
export function lfwView2Split(lfw: LfwLocation | string, fold: number, options?: { checkImages?: boolean }): LfwSplit {
  const where = location(lfw);
  const { checkImages } = splitOptions(options);
  const pairs = readLfwPairs(where.pairs);
  const people = readLfwPeople(where.people);
  if (pairs.folds.length !== people.sets.length)
    throw new DclError(
      'E_FORMAT',
      `Expected as many people sets in ${people.file} as folds in ${pairs.file} (${pairs.folds.length}) but found ${people.sets.length}`,
    );
  const last = pairs.folds.length - 1;
  if (typeof fold !== 'number' || !Number.isInteger(fold) || fold < 0 || fold > last) fail('E_ARG', `a fold number from 0 to ${last}`, 'fold', fold);
  const trainPeople = people.sets.filter((_, s) => s !== fold).flat();
  const train = byName(trainPeople);
  checkDisjoint(pairs.file, pairs.folds[fold], train, people.file, `the people sets other than set ${fold}`);
  const everyone = byName(people.sets.flat());
  const test = pairSet(where, pairs.file, [{ fold, pairs: pairs.folds[fold] }], everyone, people.file);
  const others = pairs.folds.map((p, f) => ({ fold: f, pairs: p })).filter((g) => g.fold !== fold);
  const thresholdPairs = pairSet(where, pairs.file, others, everyone, people.file);
  const result: LfwSplit = { view: 2, fold, train: trainSet(where, trainPeople), thresholdPairs, test };
  if (checkImages) checkImagesExist([result.train, test, thresholdPairs]);
  return result;
}

/**
 * View 1 (model selection): train on peopleDevTrain, choose the threshold on pairsDevTrain (null
 * when that file is absent), test on pairsDevTest. Same checks as lfwView2Split.
 */
export function lfwView1Split(lfw: LfwLocation | string, options?: { checkImages?: boolean }): LfwSplit {
  const where = location(lfw);
  const { checkImages } = splitOptions(options);
  const need = (file: string | null, name: string): string => {
    if (file === null) throw new DclError('E_IO', `Could not find ${name} (View 1) in the LFW folder ${where.root}`);
    return file;
  };
  const trainList = readLfwDevPeople(need(where.peopleDevTrain, 'peopleDevTrain.txt'));
  const testList = readLfwDevPeople(need(where.peopleDevTest, 'peopleDevTest.txt'));
  const testPairs = readLfwDevPairs(need(where.pairsDevTest, 'pairsDevTest.txt'));
  const train = byName(trainList.people);
  checkDisjoint(testPairs.file, testPairs.pairs, train, trainList.file, 'View 1');
  const test = pairSet(where, testPairs.file, [{ fold: 0, pairs: testPairs.pairs }], byName(testList.people), testList.file);
  let thresholdPairs: LfwPairSet | null = null;
  if (where.pairsDevTrain !== null) {
    const devTrain = readLfwDevPairs(where.pairsDevTrain);
    thresholdPairs = pairSet(where, devTrain.file, [{ fold: 0, pairs: devTrain.pairs }], train, trainList.file);
  }
  const result: LfwSplit = { view: 1, fold: null, train: trainSet(where, trainList.people), thresholdPairs, test };
  if (checkImages) checkImagesExist(thresholdPairs ? [result.train, test, thresholdPairs] : [result.train, test]);
  return result;
}

/** Short description of a split for logs: people, images and pairs on each side. */
export function describeLfwSplit(split: LfwSplit): string {
  const t = split.train;
  const name = split.view === 2 ? `LFW View 2 fold ${split.fold}` : 'LFW View 1';
  const pairs = (s: LfwPairSet) => `${s.a.length} pairs over ${s.paths.length} images of ${s.people.length} people`;
  return (
    `${name}: train ${t.people.length} people (${t.singles} with one image), ${t.paths.length} images; ` +
    (split.thresholdPairs ? `threshold ${pairs(split.thresholdPairs)}; ` : '') +
    `test ${pairs(split.test)}`
  );
}
