-- A workflow has at most one session open (running or waiting): starting a second one beside it
-- is refused (409, naming the open one), even when two starts race.
create unique index sessions_one_open on sessions (workflow) where state in ('running', 'waiting');
