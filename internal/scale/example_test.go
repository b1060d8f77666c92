package scale_test

import (
	"context"
	"fmt"

	"loom/internal/registry"
	"loom/internal/scale"
)

func Example() {
	groups, release, err := scale.Blocked(2000, "example-group", "example-task", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err != nil {
		panic(err)
	}
	defer release()
	infos, total := registry.Select(registry.Filter{NamePrefix: "example-task", Limit: 1})
	fmt.Println(len(groups), "groups,", total, "tasks live,", len(infos), "listed")
	// Output: 1000 groups, 2000 tasks live, 1 listed
}
