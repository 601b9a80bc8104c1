// Pull/push progress as docker prints it: off a terminal one plain line per
// change of state (no byte counts), on one each layer's line redrawn in
// place with a bar; docker's decimal sizes.
import t from 'tap';
import { humanSize, ProgressPrinter } from '../../src/cli/tsrctl/progress.js';

t.test('sizes as docker writes them', async (t) => {
  t.equal(humanSize(525), '525B');
  t.equal(humanSize(1234), '1.234kB');
  t.equal(humanSize(1_108_000), '1.108MB');
  t.equal(humanSize(3_400_000_000), '3.4GB');
});

t.test('plain lines off a terminal', async (t) => {
  let text = '';
  const p = new ProgressPrinter(false, (s) => (text += s));
  p.message('latest: Pulling from library/hello');
  p.layer('aaaaaaaaaaaa', 'Pulling fs layer');
  p.layer('aaaaaaaaaaaa', 'Downloading', 10, 100);
  p.layer('aaaaaaaaaaaa', 'Downloading', 50, 100);
  p.layer('aaaaaaaaaaaa', 'Download complete');
  p.layer('aaaaaaaaaaaa', 'Download complete');
  p.layer('aaaaaaaaaaaa', 'Pull complete');
  t.equal(text, 'latest: Pulling from library/hello\naaaaaaaaaaaa: Pulling fs layer\naaaaaaaaaaaa: Download complete\naaaaaaaaaaaa: Pull complete\n');
});

t.test('lines redrawn in place on a terminal', async (t) => {
  const writes: string[] = [];
  const p = new ProgressPrinter(true, (s) => writes.push(s));
  p.message('latest: Pulling from library/hello');
  p.layer('aaaaaaaaaaaa', 'Pulling fs layer');
  p.layer('bbbbbbbbbbbb', 'Pulling fs layer');
  p.layer('aaaaaaaaaaaa', 'Downloading', 500_000, 1_000_000);
  t.equal(writes[1], 'aaaaaaaaaaaa: Pulling fs layer\n');
  t.equal(writes[2], 'bbbbbbbbbbbb: Pulling fs layer\n');
  // two lines up, rewrite, two lines down
  t.equal(writes[3], `\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading [${'='.repeat(24)}>${' '.repeat(25)}]  500kB/1MB\r\x1b[2B`);
  p.layer('bbbbbbbbbbbb', 'Pull complete');
  t.equal(writes[4], '\x1b[1A\r\x1b[2Kbbbbbbbbbbbb: Pull complete\r\x1b[1B');
});
