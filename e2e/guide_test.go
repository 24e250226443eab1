package e2e

import (
	"bufio"
	"context"
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

	harness "foodpipe/internal/pipeline"
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
//	<!-- guide: until /RE/ -->       run the next block again until its output matches RE, for 60s at most
//	<!-- guide: ACTION -->           on its own (no block follows it): wait, absent, interrupt, sigkill, sleep
//
// The guides tell a learner what to look for in each terminal, log lines
// included, so this test checks log lines, which no other test does: the
// line a guide names is the promise under test.
//
// The guides' commands run in a directory of their own with a fresh database
// and a broker on a free port: the few rewrites in (*guide).rewrite put those
// in place of the addresses a learner types, and nothing else is changed.
var guideFiles = []struct{ name, path, section string }{
	{"README", "../README.md", "## Watch a consumer group share the partitions"},
	{"KAFKA-CONCEPTS", "../docs/KAFKA-CONCEPTS.md", ""},
}

func TestGuidesRunAsTyped(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("the guides use kcat: %v (scripts/test-deps installs it)", err)
	}
	for _, gf := range guideFiles {
		t.Run(gf.name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(gf.path)
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			if gf.section != "" {
				text = section(t, text, gf.section)
			}
			// A picture the guide shows must be there.
			for _, m := range picture.FindAllStringSubmatch(text, -1) {
				if _, err := os.Stat(filepath.Join(filepath.Dir(gf.path), m[1])); err != nil {
					t.Errorf("%s shows %s: %v", gf.path, m[1], err)
				}
			}
			steps := parseGuide(t, text)
			if len(steps) < 3 {
				t.Fatalf("%s: only %d steps marked to run", gf.path, len(steps))
			}
			g := newGuide(t)
			for _, s := range steps {
				g.do(s)
				if t.Failed() {
					return
				}
			}
		})
	}
}

// section cuts one "## " section out of a Markdown file.
func section(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, heading+"\n")
	if i < 0 {
		t.Fatalf("no section %q", heading)
	}
	rest := text[i+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// step is one thing the guide asks for: directives and, for most, the
// commands of the fenced block they stand before.
type step struct {
	line       int
	directives []string
	commands   []string
}

var picture = regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`)

var directive = regexp.MustCompile(`^<!-- guide: (.*) -->$`)

func parseGuide(t *testing.T, text string) []step {
	t.Helper()
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
					t.Fatalf("line %d: %q follows directives that want a block", n, m[1])
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
			steps, pending = append(steps, s), nil
			continue
		}
		if len(pending) > 0 && strings.TrimSpace(line) != "" {
			t.Fatalf("line %d: directives %q are not followed by a block", pendingLine, pending)
		}
	}
	if len(pending) > 0 {
		t.Fatalf("line %d: directives %q are not followed by a block", pendingLine, pending)
	}
	return steps
}

// actions are the directives that stand on their own: what a learner does
// by hand rather than by typing a block.
var actions = map[string]bool{"wait": true, "absent": true, "interrupt": true, "sigkill": true, "sleep": true}

// guide is one run of a guide: its directory, database, broker address and
// background processes.
type guide struct {
	t         *testing.T
	dir, addr string
	db, dbURL string
	env       []string
	procs     map[string]*proc
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
	g := &guide{t: t, dir: t.TempDir(), addr: freeAddr(t), dbURL: dbURL, db: strings.TrimPrefix(u.Path, "/"), procs: map[string]*proc{}}
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
	return strings.ReplaceAll(cmd, "-U postgres foodpipe", "-U postgres "+g.db)
}

func (g *guide) do(s step) {
	t := g.t
	t.Helper()
	g.prev, g.marks = g.marks, map[*proc]int{}
	for _, p := range g.procs {
		g.marks[p] = len(p.Log())
	}
	var expect []*regexp.Regexp
	var until *regexp.Regexp
	var names []string
	mode := ""
	for _, d := range s.directives {
		word, arg, _ := strings.Cut(d, " ")
		switch word {
		case "expect", "until":
			re, err := regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(arg, "/"), "/"))
			if err != nil {
				t.Fatalf("line %d: %v", s.line, err)
			}
			if word == "expect" {
				expect = append(expect, re)
			} else {
				until = re
			}
		case "run", "built":
			mode = word
		case "start":
			mode, names = word, strings.Fields(arg)
		case "instead":
			mode = word
			g.act(s.line, arg)
		default:
			if s.commands != nil {
				t.Fatalf("line %d: %q does not go with a block", s.line, d)
			}
			g.act(s.line, d)
		}
	}
	switch mode {
	case "built":
		if err := os.Symlink(bin, filepath.Join(g.dir, "foodpipe")); err != nil {
			t.Fatal(err)
		}
	case "run":
		g.run(s.line, s.commands, expect, until)
	case "start":
		if len(names) != len(s.commands) {
			t.Fatalf("line %d: %d names for %d commands", s.line, len(names), len(s.commands))
		}
		for i, c := range s.commands {
			g.spawn(names[i], c)
			for _, re := range expect {
				g.waitFor(s.line, names[i], re, nil)
			}
		}
	}
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
// must succeed. With until it runs the block again until its output matches;
// with expect the block's output must match.
func (g *guide) run(line int, cmds []string, expect []*regexp.Regexp, until *regexp.Regexp) {
	t := g.t
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out []byte
		for _, cmd := range cmds {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			c := exec.CommandContext(ctx, "sh", "-c", g.rewrite(cmd))
			c.Dir, c.Env = g.dir, g.env
			o, err := c.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("line %d: %s: %v\n%s", line, cmd, err, o)
			}
			out = append(out, o...)
		}
		if until != nil && !until.Match(out) {
			if time.Now().After(deadline) {
				t.Fatalf("line %d: for 60s the output never matched %s; last:\n%s", line, until, out)
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for _, re := range expect {
			if !re.Match(out) {
				t.Fatalf("line %d: output does not match %s:\n%s", line, re, out)
			}
		}
		t.Logf("line %d: %s\n%s", line, strings.Join(cmds, "\n"), out)
		return
	}
}

// act does what a learner does by hand: wait for a line in a terminal,
// press Ctrl-C there, kill a process, or let time pass.
func (g *guide) act(line int, action string) {
	t := g.t
	t.Logf("line %d: %s", line, action)
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
		t.Fatalf("line %d: %s: no process %q started", line, action, name)
	}
	switch word {
	case "wait": // wait NAME /RE/
		g.waitFor(line, name, regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/")), g.prev)
	case "interrupt": // Ctrl-C in NAME's terminal; it must end cleanly
		_ = p.Signal(syscall.SIGINT)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("line %d: %s ended with %d after Ctrl-C:\n%s", line, name, code, tail(p.Log(), 3000))
		}
	case "absent": // absent NAME /RE/: NAME wrote nothing matching RE since the last signal a step sent
		re := regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/"))
		out := p.Log()
		if from := g.signalled[p]; from <= len(out) {
			out = out[from:]
		}
		if m := re.FindString(out); m != "" {
			t.Fatalf("line %d: %s wrote %q since the last signal:\n%s", line, name, m, tail(out, 3000))
		}
	case "sigkill":
		_ = p.Signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
	case "sleep":
		d, err := time.ParseDuration(arg)
		if err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		time.Sleep(d)
	default:
		t.Fatalf("line %d: unknown guide action %q", line, action)
	}
}

// snapshot starts each redraw of `status --watch`; a pattern must match
// within one redraw, not across two.
var snapshot = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  \(every `)

// waitFor waits until one of the processes named (a|b) has output matching
// re, past where since marks it.
func (g *guide) waitFor(line int, names string, re *regexp.Regexp, since map[*proc]int) {
	t := g.t
	var procs []*proc
	for _, n := range strings.Split(names, "|") {
		p := g.procs[n]
		if p == nil {
			t.Fatalf("line %d: no process %q started", line, n)
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
			t.Fatalf("line %d: %s ended before its output matched %s:\n%s", line, names, re, tail(procs[0].Log(), 3000))
		}
		return false
	})
}
