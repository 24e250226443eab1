package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/harness"
	"foodpipe/internal/store/dbtest"
)

// The guides are run as a learner would type them. A guide marks what the
// test runs with HTML comments, which GitHub does not show, just before a
// fenced block or on their own:
//
//	<!-- guide: built -->            the next block builds ./foodpipe: the test links the binary it built
//	<!-- guide: run -->              run each command of the next block; each must exit 0
//	<!-- guide: start NAME... -->    start each command of the next block in the background, as NAME...
//	<!-- guide: instead ACTION -->   show the next block, but do ACTION (see act) in its place
//	<!-- guide: expect /RE/ -->      the next block's output (a started one's log) must match RE, within 60s
//	<!-- guide: until /RE/ -->       run the next block (until implies run) again until every command of it
//	                                 exits 0 and its output matches RE, for 60s at most
//	<!-- guide: same /RE/ -->        in a run block's output, RE matches at least once, and in each match its
//	                                 two groups are equal (ROWS IN DB = HIGH WATERMARK)
//	<!-- guide: ACTION -->           on its own (no block follows it): wait, absent, interrupt, sigkill, sleep
//
// A block with directives must say what to do with it (built, run, start,
// instead or until): a block whose directives do nothing fails the parse, so
// that no check a guide shows is skipped.
//
// The guides tell a learner what to look for in each terminal, log lines
// included, so this test checks log lines, which no other test does: the
// line a guide names is the promise under test.
//
// The guides run as one learner follows them: the README's section, then
// docs/KAFKA-CONCEPTS.md, in one directory, with one database and one broker
// address, each step seeing what the ones before it left. The few rewrites in
// (*guide).rewrite put the test's database, directory and free port in place
// of the ones a learner types; nothing else is changed.
var guideFiles = []struct{ path, section string }{
	{"../README.md", "## Watch a consumer group share the partitions"},
	{"../docs/KAFKA-CONCEPTS.md", ""},
}

func TestGuidesRunAsTyped(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("the guides use kcat: %v (scripts/test-deps installs it)", err)
	}
	// Every file is read and parsed before anything runs: a guide marked
	// wrongly fails at once, not minutes in.
	var steps []step
	for _, gf := range guideFiles {
		data, err := os.ReadFile(gf.path)
		if err != nil {
			t.Fatal(err)
		}
		text, first := string(data), 0
		if gf.section != "" {
			text, first = section(t, text, gf.section)
		}
		// A picture the guide shows must be there.
		for _, m := range picture.FindAllStringSubmatch(text, -1) {
			if _, err := os.Stat(filepath.Join(filepath.Dir(gf.path), m[1])); err != nil {
				t.Errorf("%s shows %s: %v", gf.path, m[1], err)
			}
		}
		fileSteps, err := parseGuide(text)
		if err != nil {
			t.Fatalf("%s: %v", gf.path, err)
		}
		if len(fileSteps) < 3 {
			t.Fatalf("%s: only %d steps marked to run", gf.path, len(fileSteps))
		}
		for i := range fileSteps {
			fileSteps[i].file, fileSteps[i].line = filepath.Base(gf.path), fileSteps[i].line+first
		}
		steps = append(steps, fileSteps...)
	}
	if t.Failed() {
		return
	}
	g := newGuide(t)
	for _, s := range steps {
		g.do(s)
		if t.Failed() {
			return
		}
	}
}

// section cuts one "## " section out of a Markdown file, and says how many
// lines of the file come before the cut, so that a step names its line.
func section(t *testing.T, text, heading string) (string, int) {
	t.Helper()
	i := strings.Index(text, heading+"\n")
	if i < 0 {
		t.Fatalf("no section %q", heading)
	}
	rest := text[i+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest, strings.Count(text[:i], "\n")
}

// step is one thing the guide asks for: directives and, for most, the
// commands of the fenced block they stand before.
type step struct {
	file       string
	line       int
	directives []string
	commands   []string
}

// at names where the step is written, for messages.
func (s step) at() string {
	if s.file == "" {
		return fmt.Sprintf("line %d", s.line)
	}
	return fmt.Sprintf("%s:%d", s.file, s.line)
}

var picture = regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`)

var directive = regexp.MustCompile(`^<!-- guide: (.*) -->$`)

// parseGuide reads the steps of a guide's Markdown.
func parseGuide(text string) ([]step, error) {
	var steps []step
	var pending []string
	var pendingLine int
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := directive.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			if actions[strings.Fields(m[1])[0]] {
				if len(pending) > 0 {
					return nil, fmt.Errorf("line %d: %q follows directives that want a block", n, m[1])
				}
				steps = append(steps, step{line: n, directives: []string{m[1]}})
				continue
			}
			if len(pending) == 0 {
				pendingLine = n
			}
			pending = append(pending, m[1])
			continue
		}
		if strings.HasPrefix(line, "```") && len(pending) > 0 {
			s := step{line: pendingLine, directives: pending}
			var cmd string
			for sc.Scan() {
				n++
				l := sc.Text()
				if strings.HasPrefix(l, "```") {
					break
				}
				// A comment after the command is for the reader.
				if i := strings.Index(l, "  #"); i >= 0 {
					l = l[:i]
				}
				l = strings.TrimSpace(l)
				if c, ok := strings.CutSuffix(l, "\\"); ok {
					cmd += c
					continue
				}
				if cmd += l; cmd != "" {
					s.commands = append(s.commands, cmd)
				}
				cmd = ""
			}
			if err := s.checkBlock(); err != nil {
				return nil, err
			}
			steps, pending = append(steps, s), nil
			continue
		}
		if len(pending) > 0 && strings.TrimSpace(line) != "" {
			return nil, fmt.Errorf("line %d: directives %q are not followed by a block", pendingLine, pending)
		}
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("line %d: directives %q are not followed by a block", pendingLine, pending)
	}
	return steps, nil
}

// checkBlock makes sure a block's directives say what to do with it: one of
// built, run, start or instead, or until, which runs it. A block marked only
// with checks would otherwise be skipped, and its checks with it. until goes
// with run alone, as does same.
func (s *step) checkBlock() error {
	mode, until, same := "", false, false
	for _, d := range s.directives {
		word, _, _ := strings.Cut(d, " ")
		switch word {
		case "built", "run", "start", "instead":
			if mode != "" && mode != word {
				return fmt.Errorf("line %d: a block is either %s or %s", s.line, mode, word)
			}
			mode = word
		case "until":
			until = true
		case "same":
			same = true
		case "expect":
		default:
			return fmt.Errorf("line %d: %q does not go with a block", s.line, d)
		}
	}
	if mode == "" && until {
		s.directives = append([]string{"run"}, s.directives...)
		mode = "run"
	}
	switch {
	case mode == "":
		return fmt.Errorf("line %d: directives %q do not say what to do with the block (built, run, start, instead or until)", s.line, s.directives)
	case (until || same) && mode != "run":
		return fmt.Errorf("line %d: until and same go with run, not %s", s.line, mode)
	}
	return nil
}

// actions are the directives that stand on their own: what a learner does
// by hand rather than by typing a block.
var actions = map[string]bool{"wait": true, "absent": true, "interrupt": true, "sigkill": true, "sleep": true}

// guide is one run of a guide: its directory, database, broker address and
// background processes.
type guide struct {
	t         *testing.T
	dir, addr string
	// smtp and api are the addresses of the guide's mail server (Mailpit),
	// mailpit its binary.
	smtp, api, mailpit string
	db, dbURL          string
	env                []string
	procs              map[string]*proc
	// marks holds how much each process had written when the step now
	// running began, prev when the one before it began: a wait looks only
	// at what came after the step it follows started, never at older lines.
	marks, prev map[*proc]int
	// signalled holds how much each process had written when a step last
	// sent a signal (Ctrl-C or kill -9), for absent to look after it.
	signalled map[*proc]int
}

func newGuide(t *testing.T) *guide {
	dbURL := dbtest.New(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	mailpit, err := harness.MailpitPath()
	if err != nil {
		t.Fatal(err)
	}
	g := &guide{t: t, dir: t.TempDir(), addr: freeAddr(t), smtp: freeAddr(t), api: freeAddr(t), mailpit: mailpit,
		dbURL: dbURL, db: strings.TrimPrefix(u.Path, "/"), procs: map[string]*proc{}}
	// The guide creates its database itself (createdb), as a learner does.
	withConn(t, strings.Replace(dbURL, "/"+g.db, "/postgres", 1), func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{g.db}.Sanitize())
		return err
	})
	g.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + g.dir, "KAFKA_BROKERS=" + g.addr,
		"DATABASE_URL=" + dbURL, "STATS_INTERVAL=1s", "PGCONNECT_TIMEOUT=5"}
	return g
}

// rewrite puts the test's broker, data directory and database in place of
// the ones the guides name; the rest of a command runs as typed.
func (g *guide) rewrite(cmd string) string {
	cmd = strings.ReplaceAll(cmd, "./foodpipe broker", "./foodpipe broker --listen "+g.addr)
	cmd = strings.ReplaceAll(cmd, "127.0.0.1:9092", g.addr)
	cmd = strings.ReplaceAll(cmd, "/tmp/foodpipe-kafka", filepath.Join(g.dir, "kafka"))
	cmd = strings.ReplaceAll(cmd, "/tmp/foodpipe-mail.db", filepath.Join(g.dir, "mail.db"))
	cmd = strings.ReplaceAll(cmd, "127.0.0.1:1025", g.smtp)
	cmd = strings.ReplaceAll(cmd, "127.0.0.1:8025", g.api)
	cmd = strings.ReplaceAll(cmd, "go tool mailpit", g.mailpit)
	return strings.ReplaceAll(cmd, "-U postgres foodpipe", "-U postgres "+g.db)
}

func (g *guide) do(s step) {
	t := g.t
	t.Helper()
	g.prev, g.marks = g.marks, map[*proc]int{}
	for _, p := range g.procs {
		g.marks[p] = len(p.Log())
	}
	var c checks
	var names []string
	mode := ""
	for _, d := range s.directives {
		word, arg, _ := strings.Cut(d, " ")
		switch word {
		case "expect", "until", "same":
			re, err := regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(arg, "/"), "/"))
			if err != nil {
				t.Fatalf("%s: %v", s.at(), err)
			}
			switch word {
			case "expect":
				c.expect = append(c.expect, re)
			case "until":
				c.until = re
			case "same":
				if re.NumSubexp() != 2 {
					t.Fatalf("%s: %s: same wants two groups", s.at(), re)
				}
				c.same = append(c.same, re)
			}
		case "run", "built":
			mode = word
		case "start":
			mode, names = word, strings.Fields(arg)
		case "instead":
			mode = word
			g.act(s.at(), arg)
		default:
			if s.commands != nil {
				t.Fatalf("%s: %q does not go with a block", s.at(), d)
			}
			g.act(s.at(), d)
		}
	}
	switch mode {
	case "built":
		// Each guide builds the binary; the second build replaces the first.
		link := filepath.Join(g.dir, "foodpipe")
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
	case "run":
		g.run(s.at(), s.commands, c)
	case "start":
		if len(names) != len(s.commands) {
			t.Fatalf("%s: %d names for %d commands", s.at(), len(names), len(s.commands))
		}
		for i, cmd := range s.commands {
			g.spawn(names[i], cmd)
			for _, re := range c.expect {
				g.waitFor(s.at(), names[i], re, nil)
			}
		}
	}
}

// checks are what a run block's output must show.
type checks struct {
	expect []*regexp.Regexp
	until  *regexp.Regexp
	same   []*regexp.Regexp
}

// failed says what out lacks of the checks, or "" when it has it all.
func (c checks) failed(out []byte) string {
	for _, re := range c.expect {
		if !re.Match(out) {
			return "output does not match " + re.String()
		}
	}
	for _, re := range c.same {
		ms := re.FindAllSubmatch(out, -1)
		if len(ms) == 0 {
			return "output has no line matching " + re.String()
		}
		for _, m := range ms {
			if !bytes.Equal(m[1], m[2]) {
				return fmt.Sprintf("%q: %s and %s differ (%s)", m[0], m[1], m[2], re)
			}
		}
	}
	return ""
}

// assignments are the VAR=value words a command may start with.
var assignments = regexp.MustCompile(`^(\w+=\S*\s+)*`)

// spawn starts a command in the background as in a terminal of its own.
// The shell execs it (after the variables it sets), so that pgrep sees the
// command line as typed.
func (g *guide) spawn(name, cmd string) {
	t := g.t
	cmd = g.rewrite(cmd)
	vars := assignments.FindString(cmd)
	cmd = vars + "exec " + cmd[len(vars):]
	hp, err := harness.Spawn(harness.Command{Name: name, Exe: "/bin/sh", Args: []string{"-c", cmd}, Dir: g.dir, Env: g.env})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{hp}
	g.procs[name] = p
	t.Cleanup(func() {
		if !p.Ended() {
			_ = p.Signal(syscall.SIGKILL)
			_ = p.Wait()
		}
		if t.Failed() {
			t.Logf("--- %s output (last 6 KB):\n%s", name, tail(withoutStats(p.Log()), 6144))
		}
	})
}

// run runs a block's commands one after the other, each to its end; each
// must succeed, and the output must pass the checks. With until, a run where
// a command fails or the output does not match is tried again, for 60s at
// most: a learner runs a status again until it shows what the guide says.
func (g *guide) run(at string, cmds []string, c checks) {
	t := g.t
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out []byte
		var failure string
		for _, cmd := range cmds {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			x := exec.CommandContext(ctx, "sh", "-c", g.rewrite(cmd))
			x.Dir, x.Env = g.dir, g.env
			o, err := x.CombinedOutput()
			cancel()
			out = append(out, o...)
			if err != nil {
				failure = fmt.Sprintf("%s: %v", cmd, err)
				break
			}
		}
		if c.until != nil {
			if failure == "" && !c.until.Match(out) {
				failure = "output does not match " + c.until.String()
			}
			if failure != "" {
				if time.Now().After(deadline) {
					t.Fatalf("%s: for 60s the block never succeeded with output matching %s; last: %s\n%s", at, c.until, failure, out)
				}
				time.Sleep(500 * time.Millisecond)
				continue
			}
		}
		if failure == "" {
			failure = c.failed(out)
		}
		if failure != "" {
			t.Fatalf("%s: %s\n%s", at, failure, out)
		}
		t.Logf("%s: %s\n%s", at, strings.Join(cmds, "\n"), out)
		return
	}
}

// act does what a learner does by hand: wait for a line in a terminal,
// press Ctrl-C there, kill a process, or let time pass.
func (g *guide) act(at string, action string) {
	t := g.t
	t.Logf("%s: %s", at, action)
	word, arg, _ := strings.Cut(action, " ")
	name, rest, _ := strings.Cut(arg, " ")
	if word == "interrupt" || word == "sigkill" {
		g.signalled = map[*proc]int{}
		for _, q := range g.procs {
			g.signalled[q] = len(q.Log())
		}
	}
	p := g.procs[name]
	if word != "sleep" && word != "wait" && p == nil {
		t.Fatalf("%s: %s: no process %q started", at, action, name)
	}
	switch word {
	case "wait": // wait NAME /RE/
		g.waitFor(at, name, regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/")), g.prev)
	case "interrupt": // Ctrl-C in NAME's terminal; it must end cleanly
		_ = p.Signal(syscall.SIGINT)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("%s: %s ended with %d after Ctrl-C:\n%s", at, name, code, tail(p.Log(), 3000))
		}
	case "absent": // absent NAME /RE/: NAME wrote nothing matching RE since the last signal a step sent
		re := regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/"))
		out := p.Log()
		if from := g.signalled[p]; from <= len(out) {
			out = out[from:]
		}
		if m := re.FindString(out); m != "" {
			t.Fatalf("%s: %s wrote %q since the last signal:\n%s", at, name, m, tail(out, 3000))
		}
	case "sigkill":
		_ = p.Signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
	case "sleep":
		d, err := time.ParseDuration(arg)
		if err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		time.Sleep(d)
	default:
		t.Fatalf("%s: unknown guide action %q", at, action)
	}
}

// snapshot starts each redraw of `status --watch`; a pattern must match
// within one redraw, not across two.
var snapshot = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  \(every `)

// waitFor waits until one of the processes named (a|b) has output matching
// re, past where since marks it.
func (g *guide) waitFor(at string, names string, re *regexp.Regexp, since map[*proc]int) {
	t := g.t
	var procs []*proc
	for _, n := range strings.Split(names, "|") {
		p := g.procs[n]
		if p == nil {
			t.Fatalf("%s: no process %q started", at, n)
		}
		procs = append(procs, p)
	}
	eventually(t, 60*time.Second, names+" output matching "+re.String(), func() bool {
		for _, p := range procs {
			out := p.Log()
			if from := since[p]; from <= len(out) {
				out = out[from:]
			}
			for _, part := range snapshot.Split(out, -1) {
				if re.MatchString(part) {
					return true
				}
			}
		}
		if len(procs) == 1 && procs[0].exited() {
			t.Fatalf("%s: %s ended before its output matched %s:\n%s", at, names, re, tail(procs[0].Log(), 3000))
		}
		return false
	})
}
