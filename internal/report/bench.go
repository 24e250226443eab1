package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"foodpipe/internal/measure"
)

// PrintBench writes `foodpipe bench`'s report: the drains against raw COPY,
// the latency at each fixed rate, the phases asked for, and each target met
// or missed.
func PrintBench(w io.Writer, r measure.BenchReport) {
	av := "off"
	if r.Autovacuum {
		av = "on"
	}
	fmt.Fprintf(w, "\nfoodpipe bench: %s, batch size %d, %s per consumer, autovacuum %s; %s, %s, PostgreSQL %s\n\n",
		count(r.Orders, "order"), r.BatchSize, count(r.Writers, "writer"), av, count(r.Machine.CPUs, "CPU"), r.Machine.Go, r.Machine.PostgreSQL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "drain\tpartitions\tconsumers\trows/s\tvs COPY\tCPU µs/order\tpeak RSS MiB\t")
	fmt.Fprintf(tw, "raw COPY\t\t\t%.0f\t1.00\t\t\t\n", r.Copy.RowsPerSec)
	for _, d := range r.Scaling {
		fmt.Fprintf(tw, "consumer\t%d\t%d\t%.0f\t%.2f\t%.1f\t%.1f\t\n", d.Partitions, d.Consumers, d.RowsPerSec, d.RatioToCopy, d.CPUMicrosPerOrder, d.PeakRSSMiB)
	}
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
	fmt.Fprintf(w, "over %s (min / median / max): COPY %s rows/s; 1 consumer %s rows/s, %s of COPY\n\n",
		count(len(r.DrainSpread.Rounds), "round"), spread(r.CopySpread, "%.0f"), spread(r.DrainSpread, "%.0f"), spread(r.RatioSpread, "%.2f"))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "orders/s\tproduced/s\terror %\tp50 ms\tp99 ms\tmax ms\tconsumer peak RSS MiB\tp99 ms min / median / max\t")
	for i, l := range r.Latency {
		p := r.Producer.Fixed[i]
		fmt.Fprintf(tw, "%.0f\t%.1f\t%+.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n", l.Rate, p.Achieved, p.ErrorPct, l.P50ms, l.P99ms, l.MaxMs, l.PeakRSSMiB,
			spread(l.P99Spread, "%.1f"))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nproducer, as fast as it goes: %.0f orders/s generated and acknowledged\n", r.Producer.MaxRate)
	printPhases(w, r)
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		mark := "met"
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "%-6s  %s: %s (want %s)\n", mark, t.Name, t.Got, t.Want)
	}
}

// printPhases prints the phases beyond the empty table, each figure as
// min / median / max over the rounds.
func printPhases(w io.Writer, r measure.BenchReport) {
	if p := r.Prefill; p != nil {
		fmt.Fprintf(w, "\ninto a table of %s (min / median / max of %s):\n", count(p.Rows, "order"), count(len(p.Drain.Rounds), "round"))
		fmt.Fprintf(w, "  COPY   %s rows/s\n  drain  %s rows/s\n  drain / COPY  %s; drain / empty-table drain %.2f\n",
			spread(p.Copy, "%.0f"), spread(p.Drain, "%.0f"), spread(p.RatioToCopy, "%.2f"), p.RatioToEmpty)
		a := p.Activity
		fmt.Fprintf(w, "  last drain: WAL %.1f MiB, buffers written by checkpoints %d and by backends %d, orders blocks read %d, hit ratio %.3f\n",
			float64(a.WALBytes)/(1<<20), a.CheckpointBuffers, a.BackendBuffers, a.BlocksRead, a.HitRatio)
	}
	if d := r.Redelivery; d != nil {
		fmt.Fprintf(w, "\nre-delivery of %s, %d stored already (min / median / max of %s):\n", count(d.Orders, "order"), d.AlreadyStored, count(len(d.Drain.Rounds), "round"))
		fmt.Fprintf(w, "  drain %s rows/s, %s of COPY\n", spread(d.Drain, "%.0f"), spread(d.RatioToCopy, "%.2f"))
		fmt.Fprintf(w, "  with %d conflicting copies stored: %s rows/s, %s of COPY\n", d.Conflicting, spread(d.ConflictDrain, "%.0f"), spread(d.ConflictRatio, "%.2f"))
		fmt.Fprintf(w, "  the rows stored before the drain unchanged: %v\n", d.StoredUnchanged)
	}
	if d := r.Dial; d != nil {
		fmt.Fprintf(w, "\nlatency dial (chart: %s):\n", d.Chart)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "orders/s\tlinger ms\tfetch wait ms\tp50 ms\tp99 ms\tmax ms\tbatches/s\tCPU µs/order\tp99 ms min / median / max\t")
		for _, p := range d.Points {
			fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f\t%.1f\t%s\t\n", p.Rate, p.LingerMs, p.FetchWaitMs, p.P50ms, p.P99ms, p.MaxMs,
				p.BatchesPerSec, p.CPUMicrosPerOrder, spread(p.P99, "%.1f"))
		}
		_ = tw.Flush()
	}
	if l := r.LowRate; l != nil {
		fmt.Fprintf(w, "\nlow rates, each process on its own (%gs windows, idle %gs; min / median / max of %s):\n", l.Window, l.Idle,
			count(len(l.Points[0].Processes[0].CPUPct.Rounds), "round"))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "orders/s\tlinger ms\tprocess\t% of a core\tCPU µs/order\twake-ups/s\tRSS MiB\tp50 ms\tp99 ms\t")
		for _, p := range l.Points {
			for i, c := range p.Processes {
				linger, lat50, lat99 := "", "", ""
				if i == 0 && p.Rate > 0 {
					linger, lat50, lat99 = fmt.Sprintf("%g", p.LingerMs), fmt.Sprintf("%.1f", p.P50ms.Median), spread(p.P99ms, "%.1f")
				}
				perOrder := "-"
				if p.Rate > 0 {
					perOrder = fmt.Sprintf("%.0f", c.CPUMicrosPerOrder.Median)
				}
				fmt.Fprintf(tw, "%.0f\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t%s\t%s\t\n", p.Rate, linger, c.Name, spread(c.CPUPct, "%.2f"), perOrder,
					c.WakeupsPerSec.Median, c.RSSMiB.Median, lat50, lat99)
			}
		}
		_ = tw.Flush()
	}
	if p := r.Protocols; p != nil {
		printProtocols(w, p)
	}
	if p := r.ProducerLimit; p != nil {
		fmt.Fprintf(w, "\nproducer against the client's limit, %s (min / median / max of %s):\n", count(p.Orders, "order"), count(len(p.Ratio.Rounds), "round"))
		fmt.Fprintf(w, "  foodpipe produce %s/s, franz-go with pre-encoded records %s/s, ratio %s\n",
			spread(p.Producer, "%.0f"), spread(p.Client, "%.0f"), spread(p.Ratio, "%.2f"))
	}
}

// printProtocols prints the protocols phase: each scenario under classic
// and under KIP-848, one beside the other.
func printProtocols(w io.Writer, p *measure.BenchProtocols) {
	fmt.Fprintf(w, "\ngroup protocols, %d partitions, session timeout %gs, each scenario %s at %g/s, the storm %s\n",
		p.Partitions, p.SessionTimeout, count(p.Orders, "order"), p.Rate, count(p.Kills, "kill"))
	fmt.Fprintf(w, "(a stall: lag > 0 and no new row; a partition stopped by a change: its stall of ≥ %gs begun within %gs of it):\n",
		p.StopAtLeast, p.ChangeWindow)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tprotocol\tmembers\tchanges\tlongest stall s\tof a partition s\tstopped per change (mean / most)\tflowing again s\tstored / produced\tdoubles\t")
	for _, s := range measure.ProtocolScenarios {
		for _, r := range p.Runs {
			if r.Scenario != s {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f / %d\t%.1f\t%d / %d\t%d\t\n", r.Scenario, r.Protocol, r.Members, r.Changes,
				r.LongestStall, r.LongestPartitionStall, r.StoppedMean(), r.StoppedMax(), r.FlowingAgain, r.Stored, r.Produced, r.Doubles)
		}
	}
	_ = tw.Flush()
}

// spread prints min / median / max in format f.
func spread(s measure.Spread, f string) string {
	return fmt.Sprintf(f+" / "+f+" / "+f, s.Min, s.Median, s.Max)
}
