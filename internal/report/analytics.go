package report

import (
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"
	"time"

	"foodpipe/internal/store"
)

// PrintAnalytics draws the revenue per minute as bars, then the top items
// and customers.
func PrintAnalytics(w io.Writer, r store.AnalyticsReport) {
	fmt.Fprintf(w, "revenue per minute (UTC) since %s, group %s\n", r.Since.Format("15:04"), safe(r.Group))
	peak := new(big.Rat)
	for _, m := range r.Minutes {
		if v, ok := new(big.Rat).SetString(m.Revenue); ok && v.Cmp(peak) > 0 {
			peak = v
		}
	}
	for _, m := range r.Minutes {
		width := 0
		if v, ok := new(big.Rat).SetString(m.Revenue); ok && peak.Sign() > 0 {
			f, _ := new(big.Rat).Quo(v, peak).Float64() // the bar's length only; the figure printed is exact
			width = int(f*40 + 0.5)
		}
		fmt.Fprintf(w, "  %s  %-40s %10s  %s\n", m.Minute.UTC().Format("15:04"), strings.Repeat("█", width), m.Revenue, count(m.Orders, "order"))
	}
	if len(r.Minutes) == 0 {
		fmt.Fprintln(w, "  (no orders in these minutes)")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ntop items\tquantity\trevenue")
	for _, it := range r.TopItems {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", safe(it.Item), it.Quantity, it.Revenue)
	}
	fmt.Fprintln(tw, "\ntop customers\torders\tspent\tlast order (UTC)")
	for _, c := range r.TopCustomers {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", safe(c.CustomerID), c.Orders, c.Spent, c.LastOrderAt.UTC().Format(time.DateTime))
	}
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
}

// PrintAnalyticsCheck writes what `foodpipe analytics verify` found of a
// group's aggregates (store.Analytics.Check): each difference, or that they
// equal the orders table's, and how many orders the group has not counted.
func PrintAnalyticsCheck(w io.Writer, c store.AnalyticsCheck) {
	group := c.Group
	for _, d := range c.Differences {
		fmt.Fprintln(w, safe(d))
	}
	if len(c.Differences) > 0 {
		return
	}
	fmt.Fprintf(w, "the aggregates of group %s equal the orders table's for the %s it counted, to the cent\n", group, count(c.Checked, "order"))
	if c.NotCounted == 0 {
		fmt.Fprintf(w, "group %s has counted every order in the table\n", group)
	} else {
		fmt.Fprintf(w, "the table holds %s group %s has not counted: its lag (foodpipe status --group %s), or orders stored before it began\n",
			count(c.NotCounted, "order"), group, group)
	}
}
