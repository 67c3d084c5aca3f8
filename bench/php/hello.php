<?php
// The hello app for php-fpm: text/plain "Hello World!", this worker's access count, its pid.
// PHP forgets everything between requests, so the count lives in APCu, keyed by the worker's pid.
header('Content-Type: text/plain');
$pid = getmypid();
$count = function_exists('apcu_inc') ? apcu_inc("hello-count-$pid") : 1;
echo "Hello World!\nAccess count: $count\nPID: $pid\n";
