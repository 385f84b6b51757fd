# Every text a member or admin sees, in English (the default language).
# Fluent syntax: https://projectfluent.org/fluent/guide/ — { $name } is a placeholder; plurals are
# selectors on a number ({ $count -> [one] … *[other] … }). Keep the keys and placeholders of every
# language the same as here (a test checks).
