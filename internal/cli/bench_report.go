package cli

// How `foodpipe bench` prints its report.

import (
	"fmt"
	"io"
	"text/tabwriter"

	"foodpipe/internal/measure"
)

func printBench(w io.Writer, r measure.BenchReport) {
	av := "off"
	if r.Autovacuum {
		av = "on"
	}
	fmt.Fprintf(w, "\nfoodpipe bench: %d orders, batch size %d, %d writers per consumer, autovacuum %s; %d CPUs, %s, PostgreSQL %s\n\n",
		r.Orders, r.BatchSize, r.Writers, av, r.Machine.CPUs, r.Machine.Go, r.Machine.PostgreSQL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "drain\tpartitions\tconsumers\trows/s\tvs COPY\tCPU µs/order\tpeak RSS MiB\t")
	fmt.Fprintf(tw, "raw COPY\t\t\t%.0f\t1.00\t\t\t\n", r.Copy.RowsPerSec)
	for _, d := range r.Scaling {
		fmt.Fprintf(tw, "consumer\t%d\t%d\t%.0f\t%.2f\t%.1f\t%.1f\t\n", d.Partitions, d.Consumers, d.RowsPerSec, d.RatioToCopy, d.CPUMicrosPerOrder, d.PeakRSSMiB)
	}
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "orders/s\tproduced/s\terror %\tp50 ms\tp99 ms\tmax ms\tconsumer peak RSS MiB\t")
	for i, l := range r.Latency {
		p := r.Producer.Fixed[i]
		fmt.Fprintf(tw, "%.0f\t%.1f\t%+.2f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", l.Rate, p.Achieved, p.ErrorPct, l.P50ms, l.P99ms, l.MaxMs, l.PeakRSSMiB)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nproducer, as fast as it goes: %.0f orders/s generated and acknowledged\n\n", r.Producer.MaxRate)
	for _, t := range r.Targets {
		mark := "met"
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "%-6s  %s: %s (want %s)\n", mark, t.Name, t.Got, t.Want)
	}
}
