// Package bad breaks every rule detcheck enforces; its test expects each.
package bad

import (
	"fmt"
	"math/rand"
	"os"
	"sync"
	clock "time"
)

var mu sync.Mutex

func Everything() {
	ch := make(chan int)
	go func() { ch <- rand.Int() }()
	<-ch
	select {}
	_ = clock.Now()
	_ = clock.Second
	var d clock.Duration
	_ = d
	fmt.Println(os.Args)
}

func Maps(m map[string]int) (keys []string, sum int) {
	for k := range m { // unmarked: reported
		keys = append(keys, k)
	}
	//detcheck:orderless: a sum
	for _, v := range m {
		sum += v
	}
	return keys, sum
}
