-- Removes everything revision 0001 created. The usage log goes with it: back it up first.
drop schema tally cascade;
