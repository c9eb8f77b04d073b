// Reads an iCalendar text on stdin with ical.js (path to its module in argv[2]) and prints, as
// JSON, what ical.js understands of each VTODO: the values the export must carry, with each
// zoned time resolved to a UTC instant through the file's own VTIMEZONEs.
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const ICAL = (await import(pathToFileURL(process.argv[2]).href)).default;
const calendar = new ICAL.Component(ICAL.parse(readFileSync(0, "utf8")));
for (const zone of calendar.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(zone);
}

function moment(time) {
  if (!time) return null;
  return {
    date: time.isDate,
    text: time.toString(),
    zone: time.timezone || (time.zone ? time.zone.tzid : null),
    unix: time.isDate ? null : time.toUnixTime(),
  };
}

const todos = calendar.getAllSubcomponents("vtodo").map((todo) => ({
  uid: todo.getFirstPropertyValue("uid"),
  summary: todo.getFirstPropertyValue("summary"),
  description: todo.getFirstPropertyValue("description"),
  due: moment(todo.getFirstPropertyValue("due")),
  dtstart: moment(todo.getFirstPropertyValue("dtstart")),
  priority: todo.getFirstPropertyValue("priority"),
  categories: todo.getAllProperties("categories").flatMap((p) => p.getValues()),
  status: todo.getFirstPropertyValue("status"),
  completed: moment(todo.getFirstPropertyValue("completed")),
  sequence: todo.getFirstPropertyValue("sequence"),
  rrule: todo.hasProperty("rrule") ? todo.getFirstPropertyValue("rrule").toString() : null,
  exdates: todo.getAllProperties("exdate").flatMap((p) => p.getValues()).map(moment),
  related: todo.getAllProperties("related-to").map((p) => ({
    uid: p.getFirstValue(),
    reltype: p.getParameter("reltype"),
  })),
  anchor: todo.getFirstPropertyValue("x-dueflow-anchor"),
  alarms: todo.getAllSubcomponents("valarm").map((alarm) => {
    const trigger = alarm.getFirstProperty("trigger");
    const value = trigger.getFirstValue();
    return {
      action: alarm.getFirstPropertyValue("action"),
      related: trigger.getParameter("related") || null,
      duration: value instanceof ICAL.Duration ? value.toSeconds() : null,
      at: value instanceof ICAL.Time ? value.toUnixTime() : null,
    };
  }),
}));
process.stdout.write(JSON.stringify({ todos, zones: calendar.getAllSubcomponents("vtimezone").length }));
