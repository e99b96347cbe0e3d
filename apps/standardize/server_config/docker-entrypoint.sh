#!/bin/sh
exec supervisord -c /supervisord.conf
